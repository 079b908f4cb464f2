"""PEFT adapters added by rasa-peft: RaSA (``RasaConfig``) and MoRA (``MoraConfig``).

Importing this package registers both with the installed PEFT, so that the usual PEFT entry points work::

    from rasa.adapters import RasaConfig
    from peft import get_peft_model, PeftModel
    model = get_peft_model(base, RasaConfig(r=8, alpha=8, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(d)
    PeftModel.from_pretrained(base2, d)   # `import rasa.adapters` must have run in this process

How the registration works (and why not ``peft.register_peft_method``) is explained in
:mod:`rasa.adapters._registry`.
"""

from ._registry import ExtraPeftType, register
from .mora import MoraConfig, MoraModel, mora_rank
from .rasa import RasaConfig, RasaModel

register(ExtraPeftType.RASA, RasaConfig, RasaModel, prefix=RasaModel.prefix)
register(ExtraPeftType.MORA, MoraConfig, MoraModel, prefix=MoraModel.prefix)

__all__ = ["ExtraPeftType", "MoraConfig", "MoraModel", "RasaConfig", "RasaModel", "mora_rank"]
