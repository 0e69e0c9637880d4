"""Randomized convergence over the simulators (guarantees "No lost change", "No echo", unmapped fields).

Many records, random edits on both sides, webhooks lost / duplicated / reordered / held back, random
API faults (5xx, 503, 429, timeouts, expired tokens). After the faults stop and ONE sync check: every
pair agrees per its group's strategy (the model in :func:`tests.chaos.allowed_values`), unmapped
fields are intact, nothing is left ``syncing``/``failed``, and a second sync check writes nothing.
Run with ``-s`` to see the figures. ``bench/convergence_bench.py`` is the same at scale.
"""

from __future__ import annotations

import pytest

from domain.conflict_policy import ConflictPolicy
from tests.chaos import ChaosConfig, ChaosRun, RecordModel, allowed_values
from tests.testbed import start_testbed

# Every strategy and both delete policies; each seed's workload deletes records (asserted below).
POLICIES = {
    "default": None,  # espocrm_wins for stammdaten, field_merge for kontakt and adresse
    "merge_advoware_tiebreak": ConflictPolicy.uniform("field_merge", "advoware_wins"),
    "advoware_wins": ConflictPolicy.uniform("advoware_wins"),
    "newest_wins": ConflictPolicy.uniform("newest_wins"),
}


@pytest.mark.parametrize(
    ("seed", "policy_name", "profile", "occ", "delete_policy"),
    [(1, "default", "8", False, "unlink"), (2, "merge_advoware_tiebreak", "9", True, "delete"),
     (6, "advoware_wins", "9", False, "unlink"), (7, "newest_wins", "8", False, "delete")],
)
async def test_random_chaos_converges_after_one_sync_check(
    seed: int, policy_name: str, profile: str, occ: bool, delete_policy: str,
) -> None:
    tb = await start_testbed(policy=POLICIES[policy_name], http_timeout=1.0, workers=4, seed=seed,
                             espo_profile=profile, occ=occ, delete_policy=delete_policy)
    try:
        cfg = ChaosConfig(records=40, rounds=3, seed=seed, timeout_delay=1.5, conflict_rate=0.15, final_edits=0.6,
                          delete_rate=0.05)
        run = ChaosRun(tb, cfg)
        report = await run.run()
        st = run.stats
        print(f"\n--- convergence seed={seed} policy={policy_name} delete policy={delete_policy}")
        for line in st.lines() + report.lines():
            print(line)
        # the guarantees (ok(): every pair agrees, 0 duplicate creates, 0 orphans, deletes per policy)
        assert report.ok(), "\n".join(report.lines(limit=50))
        assert report.pairs == st.records_created - st.records_deleted
        assert st.writes_second_check == 0, "the second sync check wrote (echo)"
        assert report.deletes_checked > 0, "no linked record was deleted: the delete policy went unchecked"
        # the workload really exercised what it claims to
        assert st.batches_lost and st.batches_duplicated and st.batches_reordered, st.lines()
        assert sum(st.faults_injected.values()) > 0 and st.conflicts + st.group_conflicts > 0, st.lines()
        assert st.convergence_points > 0 and st.writes_chaos > 0, st.lines()
    finally:
        await tb.close()


def _model(**kw: object) -> RecordModel:
    m = RecordModel("x", "00001", cp={"lastName": "A", "firstName": "a", "emailAddress": "e0",
                                      "phoneNumber": "p0"})
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def test_model_one_side_edit_must_survive_unless_the_group_may_be_won_by_the_other_side() -> None:
    default = ConflictPolicy({})  # espocrm_wins everywhere
    merge = ConflictPolicy.uniform("field_merge")
    m = _model(advo_edits={"firstName": ["b1", "b2"]})
    assert allowed_values(m, "firstName", default) == {"b2"}
    assert allowed_values(m, "lastName", default) == {"A"}
    # EspoCRM edited another stammdaten field: espocrm_wins may reset Advoware's firstName
    m.espo_edits = {"lastName": ["B"]}
    assert allowed_values(m, "firstName", default) == {"a", "b1", "b2"}
    assert allowed_values(m, "firstName", merge) == {"b2"}
    assert allowed_values(m, "lastName", default) == {"B"}


def test_model_both_sides_edit_one_field() -> None:
    m = _model(espo_edits={"emailAddress": ["e1", "e2"]}, advo_edits={"emailAddress": ["x1"]})
    assert allowed_values(m, "emailAddress", ConflictPolicy.uniform("field_merge")) == {"e2", "x1"}
    assert allowed_values(m, "emailAddress", ConflictPolicy.uniform("espocrm_wins")) == {"e0", "e1", "e2", "x1"}


def test_model_is_exact_when_both_sides_edited_a_group_in_one_quiet_phase() -> None:
    """Every edit of the group since an observed convergence point fell into one quiet phase: one sync
    saw them all, so the strategy's winner is the only allowed value, per group or (merge) per field."""
    both = {"espo_edits": {"emailAddress": ["e1"]}, "advo_edits": {"emailAddress": ["x1"], "phoneNumber": ["p1"]},
            "group_phases": {"kontakt": {3}}, "anchored": True}
    m = _model(**both)
    assert allowed_values(m, "emailAddress", ConflictPolicy.uniform("espocrm_wins")) == {"e1"}
    assert allowed_values(m, "phoneNumber", ConflictPolicy.uniform("espocrm_wins")) == {"p0"}  # group lost
    assert allowed_values(m, "emailAddress", ConflictPolicy.uniform("advoware_wins")) == {"x1"}
    assert allowed_values(m, "emailAddress", ConflictPolicy.uniform("field_merge", "advoware_wins")) == {"x1"}
    assert allowed_values(m, "emailAddress", ConflictPolicy.uniform("field_merge", "espocrm_wins")) == {"e1"}
    assert allowed_values(m, "phoneNumber", ConflictPolicy.uniform("field_merge")) == {"p1"}  # one side only
    assert allowed_values(m, "emailAddress", ConflictPolicy.uniform("newest_wins")) == {"e1", "x1"}


def test_model_is_not_exact_when_an_edit_met_a_running_sync_or_no_point_was_observed() -> None:
    espo_wins = ConflictPolicy.uniform("espocrm_wins")
    edits = {"espo_edits": {"emailAddress": ["e1"]}, "advo_edits": {"emailAddress": ["x1"], "phoneNumber": ["p1"]}}
    during = _model(**edits, group_phases={"kontakt": {-1}}, anchored=True)  # made while syncs ran
    two_phases = _model(**edits, group_phases={"kontakt": {2, 3}}, anchored=True)  # seen by two syncs
    creation = _model(**edits, group_phases={"kontakt": {3}}, anchored=False)  # cp is the creation only
    for m in (during, two_phases, creation):
        assert allowed_values(m, "emailAddress", espo_wins) == {"e0", "e1", "x1"}
        assert allowed_values(m, "phoneNumber", espo_wins) == {"p0", "p1"}
