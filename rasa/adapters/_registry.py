"""Registration of this package's PEFT methods (RaSA, MoRA) with the installed PEFT.

Why not ``peft.utils.register_peft_method``?
    PEFT 0.21 ships a public helper, ``peft.register_peft_method(name=..., config_cls=..., model_cls=...)``, but it
    refuses any ``name`` whose upper-case form is not already a member of the closed enum
    ``peft.utils.peft_types.PeftType`` ("Unknown PEFT type ... please add an entry to PeftType"). ``RASA`` and
    ``MORA`` are not members, and a stdlib ``Enum`` cannot gain members at run time without poking at its private
    ``_member_map_``.

The route taken here
    We define our own ``str``-valued enum, :class:`ExtraPeftType`, whose members compare and hash exactly like the
    plain strings ``"RASA"`` / ``"MORA"`` (just as ``PeftType.LORA == "LORA"``), and write the same three entries
    ``register_peft_method`` would write into PEFT's public lookup tables in :mod:`peft.mapping`
    (``PEFT_TYPE_TO_CONFIG_MAPPING``, ``PEFT_TYPE_TO_TUNER_MAPPING``, ``PEFT_TYPE_TO_PREFIX_MAPPING``). Everything
    in PEFT that dispatches on a config's type goes through these tables (``get_peft_model``,
    ``PeftConfig.from_pretrained``, ``PeftModel.from_pretrained``, ``get_peft_model_state_dict`` /
    ``set_peft_model_state_dict``), and ``adapter_config.json`` stores ``"peft_type": "RASA"`` which looks up the same
    entry because the enum member hashes like its string value. If a later PEFT adds ``PeftType.RASA`` itself, we use
    ``register_peft_method`` instead (unless PEFT already ships its own RaSA, in which case we refuse loudly rather
    than silently shadow it).
"""

from __future__ import annotations

import enum


class ExtraPeftType(str, enum.Enum):
    """PEFT types added by ``rasa-peft``; members behave like ``peft.PeftType`` members (``str`` subclasses)."""

    RASA = "RASA"
    MORA = "MORA"


def register(peft_type: ExtraPeftType, config_cls, model_cls, prefix: str) -> None:
    """Make ``config_cls``/``model_cls`` known to PEFT under ``peft_type`` (idempotent)."""
    from peft import mapping
    from peft.utils.peft_types import PeftType

    tables = (
        (mapping.PEFT_TYPE_TO_CONFIG_MAPPING, config_cls),
        (mapping.PEFT_TYPE_TO_TUNER_MAPPING, model_cls),
        (mapping.PEFT_TYPE_TO_PREFIX_MAPPING, prefix),
    )
    already = [table.get(peft_type.value) for table, _ in tables]
    if already == [value for _, value in tables]:
        return  # re-import of this module: nothing to do
    if any(v is not None for v in already):
        raise ImportError(
            f"PEFT already has a method registered as {peft_type.value!r} ({already[1]!r}); rasa-peft will not shadow "
            "it. Uninstall the conflicting plugin or use a PEFT version without it."
        )
    if peft_type.value in PeftType.__members__:
        from peft.utils import register_peft_method

        register_peft_method(name=peft_type.value.lower(), config_cls=config_cls, model_cls=model_cls, prefix=prefix)
        return
    for table, value in tables:
        table[peft_type] = value
