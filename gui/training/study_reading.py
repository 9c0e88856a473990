"""Reading a study for the Experiments panel (slow: database reads, importances; off the GUI thread).

:func:`read_study` turns an Optuna study into a :class:`~gui.training.experiment_data.StudyView`
(the searched parameters come from the trials' own distributions, so an old study reads
even after the project's space changed); :func:`find_default_study` opens the study a saved
project's searches write (``runs/<name>-search/study.db``) without ever creating one.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any


from engine.errors import UserError
from engine.graph.project import Project
from engine.search.space import SearchSpace
from engine.training.run_dir import epoch_metric

if TYPE_CHECKING:  # Optuna loads when a study is read (off the GUI thread), not with the app
    import optuna
from gui.training.experiment_data import (
    Axis,
    StudyView,
    TrialRow,
    best_trial,
    format_value,
    pareto_front,
)


def _axes(trials: list[optuna.trial.FrozenTrial], space: SearchSpace | None) -> list[Axis]:
    import optuna

    found: dict[str, Axis] = {}
    for t in trials:
        for name, dist in t.distributions.items():
            if name in found:
                continue
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                found[name] = Axis(name, "choice", choices=tuple(dist.choices))
            elif isinstance(dist, (optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution)):
                kind = "int" if isinstance(dist, optuna.distributions.IntDistribution) else "float"
                found[name] = Axis(name, kind, float(dist.low), float(dist.high), bool(dist.log))
    for dim in space.dimensions if space is not None else []:
        if dim.target not in found:  # no trial has asked for it yet (a new study)
            found[dim.target] = _space_axis(dim)
    order = [d.target for d in space.dimensions] if space is not None else []
    return sorted(found.values(), key=lambda a: (order.index(a.target) if a.target in order else len(order),
                                                 list(found).index(a.target)))


def _space_axis(dim: Any) -> Axis:
    """The axis of a search-space dimension, as Optuna's distribution of it will be."""
    if dim.kind == "optional":
        return Axis(dim.target, "choice", choices=(True, False))
    if dim.kind == "choice":
        return Axis(dim.target, "choice", choices=tuple(format_value(c) if isinstance(c, list) else c
                                                        for c in dim.choices))
    return Axis(dim.target, dim.kind, float(dim.low), float(dim.high), bool(dim.log))


class CurveCache:
    """Per-epoch metric values of finished trials read from their ``metrics.jsonl`` (kept until the file changes)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, list[tuple[int, float]]]] = {}

    def curve(self, run: str, metric: str) -> list[tuple[int, float]]:
        """``(epoch, value)`` of ``metric`` (``val_accuracy``) for each epoch the run logged."""
        path = Path(run) / "metrics.jsonl"
        try:
            stamp = path.stat().st_mtime
        except OSError:
            return []
        cached = self._cache.get(run)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        points = epoch_metric(path, metric)
        self._cache[run] = (stamp, points)
        return points


def read_study(study: optuna.Study, space: SearchSpace | None = None, project: Project | None = None,
               curves: CurveCache | None = None) -> StudyView:
    """Read ``study`` for the panel (slow: database reads, importances; call it off the GUI thread).

    Args:
        study: The study.
        space: The project's search space (orders the axes; ``None``: the trials' order).
        project: The project the search started from: its own configuration is looked for
            among the trials, and its cost marked on the Pareto plot.
        curves: A cache of the trials' per-epoch metrics (reuse it between reads).
    """
    import optuna

    from engine.search.runner import trial_rows

    stored = study.user_attrs.get("search") if isinstance(study.user_attrs.get("search"), dict) else {}
    directions = ["maximize" if d == optuna.study.StudyDirection.MAXIMIZE else "minimize" for d in study.directions]
    objectives = list(stored.get("objectives") or [f"objective {i + 1}" for i in range(len(directions))])
    frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
    curves = curves or CurveCache()
    rows = []
    for row in trial_rows(study):
        t = frozen.get(row["number"])
        curve = sorted((int(k), float(v)) for k, v in t.intermediate_values.items()) if t is not None else []
        if not curve and row["run"] and row["state"] != "waiting":
            curve = curves.curve(row["run"], objectives[0])
        rows.append(TrialRow(row["number"], row["state"], row["params"], row["values"], row["run"],
                             row["message"], row["seconds"], curve, bool(row.get("baseline"))))
    view = StudyView(study.study_name, objectives, directions, _axes(list(frozen.values()), space), rows)
    view.pareto = pareto_front(rows, directions) if len(directions) > 1 else set()
    view.best = best_trial(rows, directions, view.pareto)
    view.importances, view.importance_note = importances(study, view)
    view.template_trial = next((t.number for t in rows if t.baseline), None)
    if project is not None and space is not None:
        _place_template(view, project, space)
    return view


def importances(study: optuna.Study, view: StudyView) -> tuple[dict[str, float], str]:
    """Optuna's parameter importances for the first objective, or why there are none."""
    import optuna

    count = len(view.complete())
    if count < 2:
        return {}, f"Parameter importances need at least 2 complete trials ({count} so far)."
    target = (lambda t: t.values[0]) if len(view.directions) > 1 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study, target=target)
    except Exception as exc:  # noqa: BLE001 - a degenerate study: say why instead of failing
        return {}, f"Optuna could not estimate importances: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if not found:
        return {}, "Optuna found no parameter that all complete trials share."
    return dict(found), ""


def project_values(project: Project, space: SearchSpace) -> dict[str, Any]:
    """The project's own value of each searched target (as :func:`~engine.search.sampling.stored_values`
    gives a trial's). Targets the project does not hold are left out."""
    from engine.settings import training_config

    values: dict[str, Any] = {}
    try:
        config = training_config(project.training)
    except UserError:
        config = None
    for dim in space.dimensions:
        parts = dim.target.split(".")
        try:
            if parts[0] == "training":
                values[dim.target] = getattr(config, parts[1]) if config is not None else project.training[parts[1]]
            elif parts[0] == "nodes" and len(parts) == 2:
                values[dim.target] = parts[1] in project.graph.nodes
            elif parts[0] == "nodes" and parts[2] == "type":
                values[dim.target] = project.graph.nodes[parts[1]].type_id
            elif parts[0] == "nodes":
                values[dim.target] = project.graph.nodes[parts[1]].params[parts[2]]
            else:
                values[dim.target] = project.blocks[parts[1]].graph.nodes[parts[2]].params[parts[3]]
        except (KeyError, IndexError, AttributeError):
            continue
    return values


def same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two sets of searched values are the same (floats to 9 significant digits)."""
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) or isinstance(y, float):
            if not (isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-9)):
                return False
        elif x != y:
            return False
    return True


def _place_template(view: StudyView, project: Project, space: SearchSpace) -> None:
    """Find the trial that trained the project's own configuration (in a study made before the
    first trial was the project as it is), and the project's costs."""
    from engine.search.sampling import stored_values

    own = project_values(project, space)
    for t in view.complete() if view.template_trial is None else []:
        if same_values(stored_values(t.params, space), own):
            view.template_trial = t.number
            break
    costs = [name for name in view.objectives[1:] if name in ("flops", "parameters")]
    if costs:
        from engine.search.trial_cost import model_cost

        try:
            cost = model_cost(project)
        except UserError as exc:
            view.template_note = f"the project's own model: {exc}"
            return
        view.template_costs = {name: float(getattr(cost, name)) for name in costs}
    elif len(view.objectives) > 1 and view.template_trial is None:
        view.template_note = f"the project's own {view.objectives[1]} is not measured outside a trial"


def find_default_study(project: Project, project_path: Path, runs_root: Path) -> tuple[optuna.Study, SearchSpace | None] | None:
    """The study a saved project's searches write (``runs/<stem>-search/study.db``), if there is one.

    Never creates a study or a file. Returns the study and the project's space (``None``
    when the project's search section cannot be read now); ``None`` when there is no study.

    Raises:
        UserError: The study file exists but cannot be read.
    """
    import optuna

    from engine.search.runner import out_dir_for
    from engine.search.session import study_name
    from engine.search.settings import StudySettings, study_settings
    from engine.search.space import parse_space
    from engine.search.study import STUDY_FILE, default_storage, open_storage

    out_dir = out_dir_for(project_path, runs_root)
    if not (out_dir / STUDY_FILE).is_file():
        return None
    try:
        settings = study_settings(project.search)
    except UserError:
        settings = StudySettings()
    try:
        space: SearchSpace | None = parse_space(project)
    except UserError:
        space = None
    storage = open_storage(default_storage(out_dir))
    names = optuna.study.get_all_study_names(storage)
    name = study_name(project, project_path, settings)
    if name not in names:
        if len(names) != 1:
            return None
        name = names[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.load_study(study_name=name, storage=storage)
    return study, space
