"""Fixtures for the adapter tests."""

import copy

import pytest
import torch

from adapter_models import tiny_llama


@pytest.fixture(scope="module")
def llama_base():
    return tiny_llama()


@pytest.fixture
def llama(llama_base):
    return copy.deepcopy(llama_base)


@pytest.fixture
def tokens():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 97, (2, 9), generator=g)
