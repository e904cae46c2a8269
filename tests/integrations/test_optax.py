"""greedylr.integrations.optax against the Python-float rule, and inside optax's tools.

Its parity with the rule on random cases is in ``tests/test_parity.py``, with the other
implementations'. XLA contracts ``a * b + c`` into fused multiply-adds and divides by a
constant through its reciprocal, so floats agree to ``RTOL`` (a few ulps in float64),
not bit for bit.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from greedylr.integrations import optax as gopt
from greedylr.integrations.optax import event_kinds, greedy_lr
from greedylr.rule import GreedyConfig, init, update
from parity_cases import random_losses

RTOL = 1e-12  # float64: a few ulps, see the module docstring
STEPS = 60
FIELDS = ("lr", "events", "smoothed", "reference", "num_good", "num_bad", "hold", "floor_hits")


def rule_trajectory(cfg: GreedyConfig, base: float, losses: list[float]) -> dict[str, list]:
    state = init(cfg, [base])
    rows: dict[str, list] = {name: [] for name in FIELDS}
    rows["lr_before"], rows["margin"] = [], []
    for loss in losses:
        rows["lr_before"].append(state.lrs[0])
        reference = state.reference
        decision = update(cfg, state, loss)
        rows["lr"].append(state.lrs[0])
        rows["events"].append(tuple(e.kind for e in decision.events))
        smoothed = math.nan if decision.smoothed is None else decision.smoothed
        rows["smoothed"].append(smoothed)
        rows["reference"].append(state.reference)
        for name in ("num_good", "num_bad", "hold", "floor_hits"):
            rows[name].append(getattr(state, name))
        # how close the comparison of this step was (relative), for the near-tie check
        rows["margin"].append(
            abs(smoothed - reference) / max(abs(reference), 1e-300)
            if math.isfinite(reference)
            else math.inf
        )
    return rows


CHAIN_CONFIGS = [
    dict(
        factor=0.7,
        patience=1,
        smoothing="window",
        window=4,
        warmup=3,
        cooldown=1,
        min_lr=1e-3,
        max_lr=0.5,
        reset_patience=2,
        on_nonfinite="decrease",
    ),
    dict(
        factor=0.5,
        patience=2,
        increase_patience=0,
        compare="previous",
        smoothing="ema",
        window=5,
        hold_after_increase=2,
        threshold=0.01,
        min_lr_ratio=0.25,
    ),
    dict(
        factor=0.9,
        patience=0,
        mode="max",
        smoothing="none",
        threshold_mode="abs",
        threshold=0.05,
        warmup=4,
        warmup_start_factor=0.5,
        max_lr_ratio=None,
    ),
    # the blow-up guard: two of the eight scripts blow up, one into the final cooldown
    dict(
        factor=0.8,
        patience=1,
        smoothing="none",
        blowup_ratio=1.5,
        total_steps=40,
        anneal_fraction=0.25,
        min_lr_ratio=0.1,
    ),
]


@pytest.mark.parametrize("kwargs", CHAIN_CONFIGS)
def test_chain_after_sgd_applies_the_rules_lr(kwargs: dict) -> None:
    """Params move by -lr * grad, lr being the rule's LR before each observation."""
    lr0 = 0.1
    rng = random.Random(7)
    seqs = [random_losses(rng, 40) for _ in range(8)]
    with jax.enable_x64(True):
        tx = optax.chain(optax.sgd(lr0), greedy_lr(lr0, **kwargs))

        def run(losses: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            params = jnp.zeros(2)

            def body(carry, loss):
                params, state = carry
                updates, state = tx.update(jnp.ones(2), state, params, value=loss)
                new = optax.apply_updates(params, updates)
                return (new, state), (params - new, state[1].lr, state[1].events)

            return lax.scan(body, (params, tx.init(params)), losses)[1]

        steps, lrs, events = jax.device_get(jax.jit(jax.vmap(run))(jnp.asarray(seqs)))
    for i, seq in enumerate(seqs):
        rule = rule_trajectory(GreedyConfig(**kwargs), lr0, seq)
        np.testing.assert_allclose(steps[i, :, 0], rule["lr_before"], rtol=RTOL)
        np.testing.assert_allclose(lrs[i], rule["lr"], rtol=RTOL)
        assert [event_kinds(int(c)) for c in events[i]] == rule["events"]


def test_same_lrs_as_the_torch_scheduler() -> None:
    """A torch GreedyLR and greedy_lr that see the same losses apply the same LRs."""
    torch = pytest.importorskip("torch")
    from greedylr import GreedyLR

    kwargs, lr0 = CHAIN_CONFIGS[0], 0.1
    losses = random_losses(random.Random(5), 40)
    weight = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = torch.optim.SGD([weight], lr=lr0)
    sched = GreedyLR(opt, device_mode=False, trace=False, **kwargs)
    torch_lrs = []
    for loss in losses:
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(loss)
    with jax.enable_x64(True):
        tx = optax.chain(optax.sgd(lr0), greedy_lr(lr0, **kwargs))

        def body(carry, loss):
            params, state = carry
            updates, state = tx.update(jnp.ones(2), state, params, value=loss)
            return (optax.apply_updates(params, updates), state), -updates[0]

        params = jnp.zeros(2)
        _, applied = jax.jit(lambda x: lax.scan(body, (params, tx.init(params)), x))(
            jnp.asarray(losses)
        )
    np.testing.assert_allclose(np.asarray(applied), torch_lrs, rtol=RTOL)
    assert len(set(torch_lrs)) > 5  # the LR really moved


def test_scales_the_updates_of_adam() -> None:
    """chain(adam(lr), greedy_lr(lr)) is adam(lr) with each step's updates times the scale."""
    lr0 = 1e-2
    kwargs = dict(factor=0.5, patience=0, smoothing="none", min_lr_ratio=0.01)
    losses = [3.0, 2.0, 2.5, 2.6, 2.7, 1.0, 0.5, 0.7, 0.8, 0.9]
    grads = [jnp.array([0.3 * t - 1.0, 1.0 + t]) for t in range(len(losses))]
    plain, greedy = optax.adam(lr0), optax.chain(optax.adam(lr0), greedy_lr(lr0, **kwargs))
    params = jnp.zeros(2)
    s_plain, s_greedy = plain.init(params), greedy.init(params)
    rule = rule_trajectory(GreedyConfig(**kwargs), lr0, losses)

    @jax.jit
    def both(g, loss, s_plain, s_greedy):
        u_plain, s_plain = plain.update(g, s_plain, params)
        u_greedy, s_greedy = greedy.update(g, s_greedy, params, value=loss)
        return u_plain, u_greedy, s_plain, s_greedy

    for t, (g, loss) in enumerate(zip(grads, losses, strict=True)):
        u_plain, u_greedy, s_plain, s_greedy = both(g, loss, s_plain, s_greedy)
        scale = rule["lr_before"][t] / lr0
        np.testing.assert_allclose(u_greedy, u_plain * scale, rtol=1e-6)
        np.testing.assert_allclose(
            optax.tree.get(s_greedy, "scale"), rule["lr"][t] / lr0, rtol=1e-6
        )
    assert {k for kinds in rule["events"] for k in kinds} >= {"increase", "decrease"}


def test_multisteps_advances_only_on_emitting_steps() -> None:
    """MultiSteps keeps the inner state of emitting micro-steps only: the rule sees the
    value passed with the last micro-batch of each accumulation, nothing else."""
    k, lr0 = 3, 0.1
    kwargs = dict(
        factor=0.5, patience=0, smoothing="none", on_nonfinite="decrease", min_lr_ratio=0.01
    )
    emitted = [2.0, 1.0, 1.5, 1.6, 0.5, 0.4, 0.9]
    micro = []
    for v in emitted:
        # a NaN on a non-emitting micro-step would decrease the LR if it were seen
        micro += [math.nan, 100.0, v]
    tx = optax.MultiSteps(optax.chain(optax.sgd(lr0), greedy_lr(lr0, **kwargs)), every_k_schedule=k)
    params = jnp.zeros(2)
    state = tx.init(params)
    update = jax.jit(tx.update)
    steps, lrs = [], []
    for v in micro:
        _, state = update(jnp.ones(2), state, params, value=jnp.float32(v))
        inner = state.inner_opt_state[1]
        steps.append(int(inner.step))
        lrs.append(float(inner.lr))
    assert steps == [s for n in range(1, len(emitted) + 1) for s in (n - 1, n - 1, n)]
    rule = rule_trajectory(GreedyConfig(**kwargs), lr0, emitted)
    np.testing.assert_allclose(lrs[k - 1 :: k], rule["lr"], rtol=1e-6)
    assert "nonfinite" not in {kind for kinds in rule["events"] for kind in kinds}



def _buffers(tree: object) -> list[int]:
    """The device buffer of each non-empty leaf."""
    return [x.unsafe_buffer_pointer() for x in jax.tree.leaves(tree) if x.size]


@pytest.mark.parametrize("wrap", ["chain", "multisteps", "apply_if_finite"])
@pytest.mark.parametrize("kwargs", [{}, dict(smoothing="window", window=3, warmup=2)])
def test_a_fresh_state_can_be_donated_to_jit(wrap: str, kwargs: dict) -> None:
    """init gave 16 counters one shared zero array, so jit(step, donate_argnums=...) on a
    fresh state failed on its first call: 'Attempt to donate the same buffer twice'."""
    inner = optax.chain(optax.sgd(0.1), greedy_lr(0.1, factor=0.5, patience=0, **kwargs))
    tx = {
        "chain": inner,
        "multisteps": optax.MultiSteps(inner, every_k_schedule=2),
        "apply_if_finite": optax.apply_if_finite(inner, max_consecutive_errors=3),
    }[wrap]
    params = jnp.zeros(3)
    state = tx.init(params)
    buffers = _buffers(state)
    assert len(set(buffers)) == len(buffers)

    def train_step(params, state, loss):
        updates, state = tx.update(jnp.ones(3), state, params, value=loss)
        return optax.apply_updates(params, updates), state

    step = jax.jit(train_step, donate_argnums=(0, 1))
    for loss in (1.0, 0.5, 0.25, 2.0):
        params, state = step(params, state, loss)
    assert int(optax.tree.get(state, "step")) == (2 if wrap == "multisteps" else 4)



NONFINITE_KW = dict(factor=0.5, patience=0, smoothing="none", on_nonfinite="decrease",
                    min_lr_ratio=0.01, spike_ratio=2.0)


def _nonfinite_run(tx: optax.GradientTransformationExtraArgs, script: list[float]) -> tuple:
    """(params, greedy_lr's state) after one update per loss, the gradients all equal to it."""
    params = jnp.zeros(2)
    state = tx.init(params)
    step = jax.jit(tx.update)
    for loss in script:
        updates, state = step(jnp.full(2, loss), state, params, value=jnp.float32(loss))
        params = optax.apply_updates(params, updates)
    found = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, gopt.GreedyLRState))
    return params, next(x for x in found if isinstance(x, gopt.GreedyLRState))


def test_apply_if_finite_around_the_optimizer_lets_the_rule_see_a_nan() -> None:
    """The placement docs/frameworks/optax.md gives: apply_if_finite wraps the optimizer
    only and greedy_lr sees a NaN loss as the rule does; wrapped inside apply_if_finite,
    optax skips the whole inner update and the rule never sees it (what the guide warns
    about: no decrease, no nonfinite flag, the step not counted)."""
    script = [1.0, 1.0, math.nan, math.nan]
    rule = rule_trajectory(GreedyConfig(**NONFINITE_KW), 0.1, script)
    assert rule["events"][2] == ("nonfinite", "decrease")
    outside = optax.chain(optax.apply_if_finite(optax.sgd(0.1), max_consecutive_errors=5),
                          greedy_lr(0.1, **NONFINITE_KW))
    params, state = _nonfinite_run(outside, script)
    assert int(state.step) == len(script)
    assert event_kinds(state.events) == rule["events"][-1]
    assert int(state.spike_steps) == 2
    np.testing.assert_allclose(float(state.lr), rule["lr"][-1], rtol=1e-6)
    assert np.isfinite(np.asarray(params)).all()  # the NaN updates were skipped
    inside = optax.apply_if_finite(
        optax.chain(optax.sgd(0.1), greedy_lr(0.1, **NONFINITE_KW)), max_consecutive_errors=5)
    _, state = _nonfinite_run(inside, script)
    assert int(state.step) == 2 and int(state.spike_steps) == 0
    assert event_kinds(state.events) == rule["events"][1]


def test_multisteps_with_apply_if_finite_inside_lets_the_rule_see_a_nan() -> None:
    """The guide's MultiSteps placement: apply_if_finite around the optimizer inside it,
    the mean loss of the accumulated micro-batches passed with the emitting one; a NaN
    micro-batch drops the emitted update and the rule sees the NaN mean. With
    should_skip_update_fn=skip_not_finite the NaN micro-batch never reaches the rule."""
    micro = [[1.0, 1.0], [math.nan, 1.0], [1.0, 1.0]]
    rule = rule_trajectory(GreedyConfig(**NONFINITE_KW), 0.1, [1.0, math.nan, 1.0])
    assert "nonfinite" in rule["events"][1]

    def run(tx: optax.GradientTransformationExtraArgs) -> tuple:
        params = jnp.zeros(2)
        state = tx.init(params)
        step = jax.jit(tx.update)
        kinds = []
        for batches in micro:
            for i, loss in enumerate(batches):
                mean = sum(batches[: i + 1]) / (i + 1)
                updates, state = step(jnp.full(2, loss), state, params, value=jnp.float32(mean))
                params = optax.apply_updates(params, updates)
            kinds.append(event_kinds(state.inner_opt_state[1].events))
        return params, state.inner_opt_state[1], kinds

    documented = optax.MultiSteps(
        optax.chain(optax.apply_if_finite(optax.sgd(0.1), max_consecutive_errors=5),
                    greedy_lr(0.1, **NONFINITE_KW)), every_k_schedule=2)
    params, state, kinds = run(documented)
    assert kinds == rule["events"]
    assert int(state.step) == 3
    np.testing.assert_allclose(float(state.lr), rule["lr"][-1], rtol=1e-6)
    assert np.isfinite(np.asarray(params)).all()
    skipping = optax.MultiSteps(optax.chain(optax.sgd(0.1), greedy_lr(0.1, **NONFINITE_KW)),
                                every_k_schedule=2, should_skip_update_fn=optax.skip_not_finite)
    _, state, kinds = run(skipping)
    assert not any("nonfinite" in k for k in kinds)
    assert int(state.step) == 2  # the skipped micro-batch did not count: 5 of 6, 2 emitted


# held-out values before steps 3 to 7 of a 6-step warmup ramp (the best, then worse
# ones; before step 7 right after the ramp's last), then before every 5th step
RAMP_EVALS = {3: 0.5, 4: 0.45, 5: 0.6, 6: 0.7, 7: 0.55, 11: 0.5, 16: 0.4, 21: 0.6}


@pytest.mark.parametrize(("kwargs", "evals", "cut"), [
    (dict(factor=0.8, patience=1, window=3, reset_patience=1, min_lr_ratio=0.5), {}, 12),
    # saved right after a held-out value given during the warmup ramp, which only
    # recorded the best
    (dict(factor=0.8, patience=1, window=3, warmup=6, eval_patience=0), RAMP_EVALS, 5),
])
def test_state_is_a_pytree_that_resumes_exactly(kwargs: dict, evals: dict, cut: int) -> None:
    """A state saved as NumPy arrays mid-run continues as if never interrupted."""
    tx = greedy_lr(**kwargs)
    losses = jnp.asarray(random_losses(random.Random(3), 30), jnp.float32)
    held_out = jnp.asarray([evals.get(t, math.nan) for t in range(1, 31)], jnp.float32)
    update = jax.jit(lambda s, v, e: tx.update({}, s, value=v, eval_value=e)[1])
    state = tx.init({})
    for v, e in zip(losses[:cut], held_out[:cut], strict=True):
        state = update(state, v, e)
    saved = jax.tree.map(np.asarray, jax.device_get(state))
    if evals:
        assert float(saved.eval_best) == np.float32(0.45) and not saved.eval_block
    for v, e in zip(losses[cut:], held_out[cut:], strict=True):
        state = update(state, v, e)
    resumed = jax.tree.map(jnp.asarray, saved)
    for v, e in zip(losses[cut:], held_out[cut:], strict=True):
        resumed = update(resumed, v, e)
    assert jax.tree.structure(saved) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(state.step) == 30


def test_float32_default_matches_on_well_separated_losses() -> None:
    """JAX's default float32: same decisions as the float64 rule when no comparison is a
    near tie (dyadic losses, so sums and ties are exact in both); LRs within float32."""
    kwargs = dict(
        factor=0.5,
        patience=1,
        smoothing="window",
        window=3,
        cooldown=1,
        min_lr_ratio=0.1,
        max_lr_ratio=20.0,
        warmup=2,
        reset_patience=2,
    )
    rng = random.Random(11)
    seqs = [[rng.choice([0.5, 1.0, 1.25, 2.0, 3.0]) for _ in range(50)] for _ in range(16)]
    tx = greedy_lr(0.01, **kwargs)

    def run(losses):
        def body(state, v):
            state = tx.update({}, state, value=v)[1]
            return state, (state.lr, state.events)

        return lax.scan(body, tx.init({}), losses)[1]

    lrs, events = jax.device_get(jax.jit(jax.vmap(run))(jnp.asarray(seqs, jnp.float32)))
    assert lrs.dtype == np.float32
    for i, seq in enumerate(seqs):
        rule = rule_trajectory(GreedyConfig(**kwargs), 0.01, seq)
        assert [event_kinds(int(c)) for c in events[i]] == rule["events"]
        np.testing.assert_allclose(lrs[i], rule["lr"], rtol=1e-6)


TWO_DEVICES = textwrap.dedent("""
    import sys
    import greedylr, greedylr.integrations
    assert "jax" not in sys.modules, "import greedylr must not import jax"
    import jax, jax.numpy as jnp, numpy as np
    from jax import lax
    from jax.sharding import PartitionSpec as P
    from greedylr.integrations.optax import greedy_lr
    from greedylr.rule import GreedyConfig, init, update

    assert jax.device_count() == 2, jax.devices()
    kw = dict(factor=0.5, patience=1, smoothing="window", window=2, min_lr_ratio=0.01)
    # per-device losses that disagree; their mean is exact in float32
    losses = np.array([[4.0, 3.0, 3.5, 3.5, 1.0, 2.0, 2.0, 2.0, 0.5, 0.25],
                       [2.0, 3.0, 2.5, 4.5, 1.0, 0.0, 3.0, 2.0, 1.5, 0.75]], np.float32)

    def body(tx):
        def run(losses):
            def step(state, v):
                return tx.update({}, state, value=v)[1], None
            return lax.scan(step, tx.init({}), losses.reshape(-1))[0]
        return run

    def same_on_both(state):
        # equal_nan: eval_best stays NaN when no held-out value was given
        return all(np.array_equal(leaf[0], leaf[1], equal_nan=True)
                   for leaf in jax.tree.leaves(state))

    synced = greedy_lr(0.1, axis_name="d", **kw)
    alone = greedy_lr(0.1, **kw)
    mesh = jax.make_mesh((2,), ("d",))
    sharded = jax.device_put(losses, jax.sharding.NamedSharding(mesh, P("d")))
    results = {
        "pmap": jax.pmap(body(synced), axis_name="d")(losses),
        "shard_map": jax.jit(jax.shard_map(
            lambda x: jax.tree.map(lambda a: a[None], body(synced)(x)), mesh=mesh,
            in_specs=P("d"), out_specs=P("d")))(sharded),
    }
    rule = init(GreedyConfig(**kw), [0.1])
    for v in losses.mean(axis=0):
        update(GreedyConfig(**kw), rule, float(v))
    for name, state in results.items():
        state = jax.device_get(state)
        assert same_on_both(state), name
        assert int(state.step[0]) == 10, name
        np.testing.assert_allclose(state.lr[0], rule.lrs[0], rtol=1e-6, err_msg=name)
        assert (int(state.num_good[0]), int(state.num_bad[0])) == (rule.num_good, rule.num_bad)
    # without axis_name each device decides on its own loss, and they differ
    apart = jax.device_get(jax.pmap(body(alone), axis_name="d")(losses))
    assert not same_on_both(apart)
    # held-out values that disagree between the devices are averaged as the loss is
    evals = np.array([[1.5, 2.0], [1.0, 0.5]], np.float32)

    def with_evals(tx):
        def run(evals):
            state = tx.init({})
            for held_out in evals:
                state = tx.update({}, state, value=1.0, eval_value=held_out)[1]
            return state
        return run

    held = jax.device_get(jax.pmap(with_evals(synced), axis_name="d")(evals))
    assert same_on_both(held)
    assert float(held.eval_best[0]) == 1.25  # the best of the means (1.25, 1.25)
    print("OK", float(results["pmap"].lr[0]))
""")


def test_two_host_devices_hold_identical_state() -> None:
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("OK"), proc.stdout


def test_value_is_required_and_scalar() -> None:
    tx = greedy_lr()
    state = tx.init({})
    with pytest.raises(TypeError, match="value"):
        tx.update({}, state)
    with pytest.raises(ValueError, match=r"scalar loss, got shape \(2,\)"):
        tx.update({}, state, value=jnp.ones(2))
    # a shape-(1,) held-out value gave the state, then the parameters, a shape of (1,)
    with pytest.raises(ValueError, match=r"eval_value must be a scalar, got shape \(1,\)"):
        tx.update({}, state, value=1.0, eval_value=jnp.ones(1))


def test_a_numpy_learning_rate_is_a_number() -> None:
    # np.float32 was refused as "must be finite and > 0"
    state = greedy_lr(np.float32(0.5)).init({})
    assert float(state.lr) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(factor=1.5), r"factor must be in \(0, 1\), got 1.5"),
        (dict(on_nonfinite="raise"), "on_nonfinite='raise' needs a host read"),
        (dict(learning_rate=0.0), "learning_rate must be finite and > 0, got 0.0"),
        (dict(learning_rate=1e-3, min_lr=1e-2), "outside its bounds"),
        (dict(config=GreedyConfig(), factor=0.5), "config or keyword knobs, not both"),
        (dict(min_lr=[1e-4, 1e-5]), "min_lr has 2 values for 1 parameter groups"),
    ],
)
def test_bad_configuration_is_rejected_with_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        greedy_lr(**kwargs)


def test_event_flags_match_the_torch_device_rule() -> None:
    tensor_rule = pytest.importorskip("greedylr.tensor_rule")
    for name in ("INCREASE", "DECREASE", "CLIPPED", "HOLD", "WARMUP_END", "RESET", "NONFINITE",
                 "BLOWUP"):
        assert getattr(gopt, name) == getattr(tensor_rule, name), name


def _with_eval(cfg: GreedyConfig, script: list[tuple[float, float | None]]) -> list[tuple]:
    """(event_kinds, lr) after each ``tx.update`` with ``(value, eval_value)``, float64."""
    out = []
    with jax.enable_x64(True):
        tx = greedy_lr(0.1, config=cfg)
        state = tx.init(jnp.zeros(1))
        for value, held_out in script:
            _, state = tx.update(jnp.zeros(1), state, None, value=value, eval_value=held_out)
            out.append((event_kinds(int(state.events)), float(state.lr)))
    return out


def test_a_blocked_held_out_decrease_is_clipped_as_in_the_rule() -> None:
    """A held-out cut that no LR could take is the rule's 'clipped' event, and sets
    EVAL_CLIPPED, not EVAL_DECREASE (it was flagged EVAL_DECREASE, named 'eval_decrease');
    with the update's own change on the same call, each is named apart."""
    from greedylr.rule import observe_eval

    floor = GreedyConfig(min_lr_ratio=1.0, smoothing="none")
    got = _with_eval(floor, [(1.0, 1.0), (1.0, 2.0)])
    rule = init(floor, [0.1])
    update(floor, rule, 1.0)
    observe_eval(floor, rule, 1.0)
    update(floor, rule, 1.0)
    want = [e.kind for e in observe_eval(floor, rule, 2.0).events]
    assert want == ["clipped"]
    assert got[1] == (("clipped",), 0.1)
    with jax.enable_x64(True):
        tx = greedy_lr(0.1, config=floor)
        state = tx.init(jnp.zeros(1))
        _, state = tx.update(jnp.zeros(1), state, None, value=1.0, eval_value=1.0)
        _, state = tx.update(jnp.zeros(1), state, None, value=1.0, eval_value=2.0)
    assert int(state.events) & gopt.EVAL_CLIPPED and not int(state.events) & gopt.EVAL_DECREASE
    # a held-out value worse than the best blocks increases; the update may decrease.
    # eps 0.04: the held-out cut of 0.1 (by 0.7: 0.03) is blocked, the decrease (0.05) not
    small = GreedyConfig(factor=0.5, patience=0, smoothing="none", eval_factor=0.7, eps=0.04,
                         min_lr_ratio=None, max_lr_ratio=None, blowup_ratio=None)
    got = _with_eval(small, [(1.0, None), (1.0, 1.0), (2.0, 2.0)])
    assert got == [(("increase",), 0.2), (("decrease",), 0.1), (("clipped", "decrease"), 0.05)]
    # the lower bound 0.05: the held-out cut takes the LR there and the decrease is
    # blocked; then both are
    floor = GreedyConfig(factor=0.5, patience=0, smoothing="none", eval_factor=0.5,
                         min_lr_ratio=0.5, max_lr_ratio=None, blowup_ratio=None)
    got = _with_eval(floor, [(1.0, None), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])
    assert got[2:] == [(("eval_decrease", "clipped"), 0.05), (("clipped", "clipped"), 0.05)]



def test_event_kinds_reads_the_state_field_as_it_is() -> None:
    """state.events (a 0-d jax.Array) and it read back with jax.device_get (a NumPy
    integer) raised "unhashable type" from the cache inside; a vmapped state's events
    are refused with a message that says to index them."""
    tx = greedy_lr(0.1, factor=0.5, patience=0, smoothing="none")
    state = tx.init({})
    _, state = tx.update({}, state, value=1.0)
    want = ("increase",)
    assert event_kinds(int(state.events)) == want
    assert event_kinds(state.events) == want
    assert event_kinds(jax.device_get(state.events)) == want
    assert event_kinds(np.asarray(state.events)) == want
    assert event_kinds(np.int32(gopt.INCREASE)) == want
    batched = jax.vmap(lambda v: tx.update({}, tx.init({}), value=v)[1].events)(jnp.ones(3))
    with pytest.raises(ValueError, match=r"shape \(3,\).*event_kinds\(state.events\[i\]\)"):
        event_kinds(batched)
    with pytest.raises(TypeError, match=r"needs an integer.*got float"):
        event_kinds(1.0)
    with pytest.raises(TypeError, match="needs an integer"):
        jax.jit(event_kinds)(state.events)


def test_ema_table_ends_where_python_rounds_to_one() -> None:
    table, complete = gopt._ema_table(10)
    beta = 1.0 - 2.0 / 11
    assert complete and table[-1] == 1.0 and table[-2] < 1.0
    assert all(table[n - 1] == 1.0 - beta**n for n in range(1, len(table) + 1))


def test_docstring_examples_run() -> None:
    import doctest

    result = doctest.testmod(gopt, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0
