"""One line of figures per pipeline stage, read from a run folder, for the results scripts' tables.

A finished run has its stages in summary.json; a run cut off (by a time limit, say) has the stages it finished in
pipeline_state.json, and those are read instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple


class Words(NamedTuple):
    """What an env's episodes, returns and costs are called in a table; `cost` None: the env has no cost."""

    episode: str = "episode"
    ret: str = "return"
    cost: str | None = "cost"
    discrete: bool = False  # shadow disagreement is the share of states where choices differ, else action distance


PLAIN = Words()
RECSYS = Words(episode="session", ret="engagement", cost="unsafe", discrete=True)
WORDS = {"recsys": RECSYS, "recsys-shifted": RECSYS, "hopper": Words(cost=None), "halfcheetah": Words(cost=None)}


def words_for(env: str) -> Words:
    return WORDS.get(env, PLAIN)


def load_stages(folder: Path) -> tuple[dict, dict[str, dict]]:
    """(summary.json or {} for a run cut off, the stages it finished by name in the order they ran)."""
    summary_file, state_file = folder / "summary.json", folder / "pipeline_state.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        return summary, {stage["stage"]: stage for stage in summary["stages"]}
    return {}, json.loads(state_file.read_text())["results"] if state_file.is_file() else {}


def verdict(stage: dict) -> str:
    return "passed" if stage["passed"] else ("rolled back" if stage.get("rolled_back") else "stopped")


def stage_text(name: str, stage: dict, words: Words = PLAIN) -> str:
    """The stage's figures in a sentence, then its verdict."""
    f, w = stage["figures"], words
    per = f" per {w.episode}"

    def compared() -> str:  # the canary's and the promotion's "return a vs b[, cost c vs d]"
        text = f"{w.ret} {f['candidate_return_mean']:.2f} vs {f['incumbent_return_mean']:.2f}"
        return text + (f", {w.cost} {f['candidate_cost_mean']:.2f} vs {f['incumbent_cost_mean']:.2f}" if w.cost else "")

    if name == "data":
        text = f"{f['whole_episodes']} whole {w.episode}s, {w.ret} {f['return_mean']:.2f}"
        text += f" and {f['cost_mean']:.2f} {w.cost}{per}" if w.cost else per
    elif name == "offline":
        parts = []
        for agent in ("iql", "cql", "bc"):
            if f"{agent}_eval_return_per_seed" in f:
                part = f"{agent} {', '.join(f'{v:.1f}' for v in f[f'{agent}_eval_return_per_seed'])}"
                if w.cost:
                    part += f" ({w.cost} {', '.join(f'{v:.2f}' for v in f[f'{agent}_eval_cost_per_seed'])})"
                parts.append(part)
        text = "; ".join(parts) + f"{per}, greedy"
    elif name == "ope":
        text = (f"{f['passing']} of {len(f['policies'])} passed against the incumbent's "
                f"{f['incumbent']['estimate']:.2f}; chose {f.get('chosen', '–')}")
    elif name == "shadow":
        text = f"{f['ood_rate']:.1%} of {f['live_states']} states past the novelty threshold"
        if f.get("live_env", "") != f.get("logged_env", ""):
            moved = ", ".join(f"{key} {value:+.2f}" for key, value in
                              sorted(f["feature_shift"].items(), key=lambda item: -abs(item[1])))
            text = f"in {f['live_env']}: {text}; features moved (std) {moved}"
        text += (f"; choices differ on {f['disagreement']:.0%} of states" if w.discrete else
                 f"; action distance {f['disagreement']:.3f}")
    elif name == "canary":
        text = f"{f['candidate_episodes']} candidate {w.episode}s against {f['incumbent_episodes']}: {compared()}"
        if w.cost:
            text += f", incidents {f['candidate_incidents']} vs {f['incumbent_incidents']}"
    elif name == "finetune":
        text = f"{f['env_steps']} steps in {f['env']}: "
        text += f"{f['online_cost_total']:.0f} {w.cost} in all, " if w.cost else ""
        text += f"online {w.ret} {f['online_return_mean']:.2f}"
    else:
        text = f"fine-tuned vs before: {compared()}; "
        text += f"{f['live_version']} live"
    return f"{text}; {verdict(stage)}"
