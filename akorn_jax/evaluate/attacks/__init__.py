"""L∞ adversarial attacks on image classifiers (see `common` for the classifier interface and EOT).

Gradient attacks (`gradient`): random_sign (no model), fgsm, pgd, apgd_ce, apgd_dlr, apgd_t.
Minimal-norm attack (`fab`): fab_t. Query-only attack (`square`): square.
"""

from collections.abc import Callable

import jax

from akorn_jax.evaluate.attacks.common import (LogitsFn, cross_entropy, dlr, dlr_targeted, margin,
                                               predict)
from akorn_jax.evaluate.attacks.fab import fab_t, fab_t_minimal, linf_step_to_hyperplane
from akorn_jax.evaluate.attacks.gradient import (apgd_ce, apgd_checkpoints, apgd_dlr, apgd_t,
                                                 fgsm, pgd_linf, random_sign)
from akorn_jax.evaluate.attacks.square import square, square_sides

ATTACKS: dict[str, Callable[..., jax.Array]] = {
    "random_sign": random_sign,
    "fgsm": fgsm,
    "pgd": pgd_linf,
    "apgd_ce": apgd_ce,
    "apgd_dlr": apgd_dlr,
    "apgd_t": apgd_t,
    "fab_t": fab_t,
    "square": square,
}

# Attacks that never look at the model's gradient (no `eot` gradient averaging to report for
# random_sign; square averages logits per query instead).
NO_EOT = frozenset({"random_sign"})

__all__ = ["ATTACKS", "NO_EOT", "LogitsFn", "apgd_ce", "apgd_checkpoints", "apgd_dlr", "apgd_t",
           "cross_entropy", "dlr", "dlr_targeted", "fab_t", "fab_t_minimal", "fgsm",
           "linf_step_to_hyperplane", "margin", "pgd_linf", "predict", "random_sign", "square",
           "square_sides"]
