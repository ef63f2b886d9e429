"""Cost models: FLOPs, tables, user callables, and how the sampler prices fidelities with them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import SCALES, TARGET_SCALE, TARGET_STEP

import optuna_adso as adso
from optuna_adso.cost import resolve_cost


def test_flops_cost_is_six_n_d():
    cost = adso.FlopsCost(tokens_per_step=512 * 1024, scale_param="model_size")
    assert cost({"model_size": 1e9}, 20_000) == pytest.approx(6 * 1e9 * 512 * 1024 * 20_000)
    assert cost.flops(1e8, 10) == pytest.approx(6 * 1e8 * 512 * 1024 * 10)
    # linear in steps and in parameters
    assert cost({"model_size": 2e8}, 300) == pytest.approx(2 * 3 * cost({"model_size": 1e8}, 100))
    assert "tokens_per_step" in repr(cost)


def test_flops_cost_scale_param_is_filled_in_by_the_sampler_on_a_copy():
    cost = adso.FlopsCost(tokens_per_step=1024)
    with pytest.raises(KeyError, match="scale parameter"):
        cost({"model_size": 1e9}, 10)
    sampler = adso.ADSOSampler(target={"model_size": TARGET_SCALE, "step": TARGET_STEP}, cost=cost)
    assert cost.scale_param is None  # the user's object is not changed...
    assert sampler.cost is cost  # ...and the sampler reports it as given
    assert sampler.target_cost == pytest.approx(6 * TARGET_SCALE * 1024 * TARGET_STEP)
    # relative costs of runnable fidelities: a 1e7 run to step 100 is 1/1000 of a target run
    assert sampler.run_cost(1e7, 100) / sampler.target_cost == pytest.approx(1e-3)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf])
def test_flops_cost_rejects_bad_tokens_per_step(bad):
    with pytest.raises(ValueError, match="tokens_per_step"):
        adso.FlopsCost(tokens_per_step=bad)


def _table() -> adso.TableCost:
    # cost(scale, step): 1e7 costs 1 per step, 1e9 costs 100 per step (a power law of slope 1)
    rows = [(1e7, 1000, 1000.0), (1e7, 2000, 2000.0), (1e9, 1000, 1e5), (1e9, 2000, 2e5)]
    return adso.TableCost(rows, scale_param="n")


def test_table_cost_interpolates_steps_linearly_and_scales_log_log():
    t = _table()
    assert t({"n": 1e7}, 1000) == pytest.approx(1000.0)
    assert t({"n": 1e7}, 1500) == pytest.approx(1500.0)  # between rows
    assert t({"n": 1e7}, 500) == pytest.approx(500.0)  # through zero before the first row
    assert t({"n": 1e7}, 4000) == pytest.approx(4000.0)  # linear beyond the last row
    assert t({"n": 1e8}, 1000) == pytest.approx(1e4, rel=1e-9)  # power law between scales
    assert t({"n": 1e10}, 1000) == pytest.approx(1e6, rel=1e-9)  # extrapolated on the same law
    # monotone in both arguments
    steps = np.linspace(10, 3000, 30)
    for s in (1e7, 3e7, 1e8, 1e9):
        c = [t.cost(s, x) for x in steps]
        assert np.all(np.diff(c) > 0)
    assert t.cost(3e7, 1000) < t.cost(1e8, 1000) < t.cost(3e8, 1000)


def test_table_cost_single_scale_is_proportional_to_scale():
    t = adso.TableCost([(1e8, 100, 50.0)], scale_param="n")
    assert t.cost(2e8, 100) == pytest.approx(100.0)


def test_table_cost_from_csv(tmp_path):
    path = tmp_path / "flops.csv"
    path.write_text("params_m,step,flops\n10,1000,1000\n10,2000,2000\n1000,1000,100000\n1000,2000,200000\n")
    t = adso.TableCost.from_csv(path, scale_column="params_m", scale_multiplier=1e6, scale_param="n")
    ref = _table()
    for s, step in [(1e7, 1500), (1e8, 1000), (1e9, 2000)]:
        assert t.cost(s, step) == pytest.approx(ref.cost(s, step))
    with pytest.raises(ValueError, match="missing column"):
        adso.TableCost.from_csv(path, scale_column="params")


@pytest.mark.parametrize(
    "rows, match",
    [([], "at least one"), ([(0.0, 10, 1.0)], "scale"), ([(1e7, 10, -1.0)], "cost must be >= 0")],
)
def test_table_cost_validation(rows, match):
    with pytest.raises(ValueError, match=match):
        adso.TableCost(rows)


def test_table_cost_works_as_the_sampler_cost():
    sampler = adso.ADSOSampler(target={"n": 1e9, "step": 2000}, cost=adso.TableCost(
        [(1e7, 1000, 1000.0), (1e7, 2000, 2000.0), (1e9, 1000, 1e5), (1e9, 2000, 2e5)]
    ))
    assert sampler.target_cost == pytest.approx(2e5)
    assert sampler.run_cost(1e7, 200) == pytest.approx(200.0)


def test_resolve_cost_validates_every_value():
    f = resolve_cost(lambda params, step: params["size"] * step, "size")
    assert f(10.0, 3) == 30.0
    with pytest.raises(ValueError, match=r"cost\(.*returned -1"):
        resolve_cost(lambda p, s: -1, "size")(10.0, 3)
    with pytest.raises(ValueError, match="finite"):
        resolve_cost(lambda p, s: math.inf, "size")(10.0, 3)
    with pytest.raises(TypeError, match="must return a number"):
        resolve_cost(lambda p, s: "a lot", "size")(10.0, 3)
    with pytest.raises(TypeError, match="cost must be"):
        resolve_cost(42, "size")
    # a user callable receives the scale under the study's parameter name
    seen = []
    resolve_cost(lambda p, s: seen.append((dict(p), s)) or 1.0, "model_size")(1e8, 50)
    assert seen == [({"model_size": 1e8}, 50)]


def test_default_cost_is_scale_times_steps():
    sampler = adso.ADSOSampler(target={"model_size": TARGET_SCALE, "step": TARGET_STEP})
    for s in SCALES:
        assert sampler.run_cost(s, 100) / sampler.target_cost == pytest.approx(s * 100 / (TARGET_SCALE * TARGET_STEP))


def test_a_sampler_with_a_flops_cost_pickles():
    """Worker processes and spawned DDP ranks receive the sampler: it must pickle."""
    import pickle

    import optuna_adso as adso

    sampler = adso.ADSOSampler(target={"model_size": 1e9, "step": 1000}, cost=adso.FlopsCost(tokens_per_step=1024))
    clone = pickle.loads(pickle.dumps(sampler))
    assert clone.run_cost(1e8, 500) == sampler.run_cost(1e8, 500) == 6.0 * 1e8 * 1024 * 500
