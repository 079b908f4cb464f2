"""Tiny random Llama / Mixtral builders for the adapter tests (hidden 32-64, 2-4 layers)."""


import torch

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_llama(num_layers: int = 3, hidden: int = 32, seed: int = 0, dtype=torch.float32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=num_layers, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=97, max_position_embeddings=64, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(cfg).to(dtype).eval()


def tiny_mixtral(num_layers: int = 2, hidden: int = 64, seed: int = 0):
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(seed)
    cfg = MixtralConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=num_layers, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=97, max_position_embeddings=64, num_local_experts=4,
        num_experts_per_tok=2, tie_word_embeddings=False,
    )
    model = MixtralForCausalLM(cfg).eval()
    with torch.no_grad():  # transformers leaves the fused expert tensors uninitialised (torch.empty)
        for name, p in model.named_parameters():
            if "experts" in name:
                p.normal_(0, 0.02)
    return model


