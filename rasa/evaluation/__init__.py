"""Evaluation: HumanEval+ (evalplus, sandboxed), MATH (two answer scorers), forgetting (lm-eval).

Every CLI writes a metrics CSV with the columns ``run_id,epoch,benchmark,metric,scorer,value``
(values in percent) and a per-item details CSV, both atomically.
"""
