"""scripts/finetune_results.py's variants (--set): the fine-tuning runs take the keys and get their own folders;
the offline runs and the from-scratch agents, which no fine-tuning key changes, keep the table's."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts import finetune_results  # noqa: E402


def test_a_variant_changes_only_the_fine_tuning_runs():
    base = {agent: (folder, command) for agent, folder, command in finetune_results.commands("pointmass", "medium")}
    variant = {agent: (folder, command)
               for agent, folder, command in finetune_results.commands("pointmass", "medium", ("cql_alpha=1.0",))}
    assert variant["cql"][0] == "runs/finetune/pointmass/medium/cql-cql_alpha1.0"
    assert variant["cql"][1][-2:] == ["--set", "cql_alpha=1.0"]
    assert variant["cql"][1][:-2] == [*(part if part != base["cql"][0] else variant["cql"][0]
                                        for part in base["cql"][1])]
    for agent in ("sac", "rlpd"):
        assert variant[agent] == base[agent]
    assert variant["calql"][0] == "runs/finetune/pointmass/medium/calql-cql_alpha1.0"
    offline = [command for _, folder, command in finetune_results.commands("pointmass", "medium", ("cql_alpha=1.0",))
               if folder.endswith("calql-offline")]
    assert len(offline) == 1 and "--set" not in offline[0]


def test_a_variants_table_sets_each_agent_beside_itself_as_configured():
    assert [heading for heading, _, _ in finetune_results.columns((), ("cql",))] == ["IQL", "CQL", "Cal-QL", "SAC",
                                                                                     "RLPD"]
    variant = finetune_results.columns(("cql_alpha=1.0",), ("cql", "calql"))
    assert variant == [("CQL", "cql", ()), ("CQL, cql_alpha=1.0", "cql", ("cql_alpha=1.0",)),
                       ("Cal-QL", "calql", ()), ("Cal-QL, cql_alpha=1.0", "calql", ("cql_alpha=1.0",))]


def test_a_variant_trains_the_runs_its_table_sets_beside_it(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(finetune_results, "ROOT", tmp_path)  # no run exists there: every one is missing
    monkeypatch.setattr(finetune_results, "execute", lambda command, lock: ran.append(command[command.index(
        "--run-dir") + 1]))
    finetune_results.train_all(["pointmass"], None, ("calql",), ("medium",), ("cql_alpha=1.0",))
    assert ran == ["runs/finetune/pointmass/medium/calql-offline", "runs/finetune/pointmass/medium/calql",
                   "runs/finetune/pointmass/medium/calql-cql_alpha1.0"]
