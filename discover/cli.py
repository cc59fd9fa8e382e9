"""The `discover` command: a thin layer over :mod:`discover.run` and the stage modules."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from discover.config import DATA_ENV, Config, FineTuneConfig, load_config
from discover.errors import DiscoverError
from discover.memory import keep_freed_memory
from discover.workspace import Workspace

log = logging.getLogger("discover")


def _load(args: argparse.Namespace) -> tuple[Config, Workspace]:
    from discover.data.ingest import require_catalog

    config = load_config(args.config)
    if getattr(args, "engine", None):
        config = config.model_copy(update={"engine": args.engine})
    require_catalog(config)  # before an engine starts: the one line, at once
    return config, Workspace(args.workspace)


def _load_ingested(args: argparse.Namespace) -> tuple[Config, Workspace]:
    """`_load`, then ingest the catalog (a no-op when the workspace already holds it)."""
    from discover.data.ingest import ingest

    config, workspace = _load(args)
    ingest(config, workspace)
    return config, workspace


def cmd_ingest(args: argparse.Namespace) -> None:
    from discover.data.ingest import ingest

    config, workspace = _load(args)
    result = ingest(config, workspace)
    print(result.report.summary())
    print(f"workspace {workspace.root}" + ("  (unchanged, nothing done)" if result.skipped else ""))


def cmd_embed(args: argparse.Namespace) -> None:
    from discover.embed.stage import embed_catalog
    from discover.engine import engine_session

    config, workspace = _load_ingested(args)
    with engine_session(config):
        features = embed_catalog(config, workspace)
    for part in features.parts:
        print(
            f"{part.name:20s} {part.dim:5d}-d  computed {part.computed:,}  from cache {part.cached:,}  -> {part.path}"
        )
    print(f"fused                {features.vectors.shape[1]:5d}-d  {features.vectors.shape[0]:,} products")


def cmd_run(args: argparse.Namespace) -> None:
    from discover.pipeline import run

    config, workspace = _load(args)
    result = run(config, workspace, run_id=args.run_id)
    print(result.summary())


def cmd_evaluate(args: argparse.Namespace) -> None:
    from discover.evaluate.scoring import evaluate_run, format_metrics

    workspace = Workspace(args.workspace)
    run_id = args.run or workspace.latest_run_id()
    metrics = evaluate_run(workspace, run_id)
    print(format_metrics(metrics))


def cmd_export(args: argparse.Namespace) -> None:
    from discover.outputs.export import export_run

    workspace = Workspace(args.workspace)
    run_id = args.run or workspace.latest_run_id()
    paths = export_run(workspace, run_id, fmt=args.format, out_dir=args.out, curated=args.curated)
    for path in paths:
        print(path)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from discover.embed.pretrain import pretrain

    config, workspace = _load_ingested(args)
    result = pretrain(config, workspace, minutes=args.minutes)
    print(result.summary())


def cmd_classify_train(args: argparse.Namespace) -> None:
    from discover import classify
    from discover.classify.data import imbalance_summary
    from discover.classify.stage import format_classify_metrics, imbalance_path

    config, workspace = _load(args)
    if args.minutes and not (args.fine_tune or config.classify.fine_tune):
        raise DiscoverError("--minutes is the fine-tuning budget: add --fine-tune partial|full (or classify.fine_tune)")
    if args.fine_tune or args.minutes:  # overrides of classify.fine_tune (or of its defaults)
        update = {"image_strategy": args.fine_tune, "text_strategy": args.fine_tune, "minutes": args.minutes}
        tuning = config.classify.fine_tune or FineTuneConfig()
        config.classify.fine_tune = tuning.model_copy(update={k: v for k, v in update.items() if v})
    trained = classify.train(config, workspace)
    for i, line in enumerate(imbalance_summary(trained.imbalance, config.classify.max_per_class)):
        print(f"{'imbalance' if i == 0 else '':10s} {line}")
    print(format_classify_metrics(trained.metrics))
    print(f"model      {trained.model_dir}")
    print(f"metrics    {workspace.root / 'classify' / trained.model_id / 'metrics.json'}")
    print(f"imbalance  {imbalance_path(workspace, trained.model_id)}  (every class, per split)")


def cmd_classify_evaluate(args: argparse.Namespace) -> None:
    from discover import classify
    from discover.classify.stage import format_classify_metrics

    config, workspace = _load(args)
    if args.by:
        table = classify.evaluate_by(config, workspace, args.by)
        print(f"Leave one group out: each value of '{args.by}' held out in turn, trained on the others")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return
    print(format_classify_metrics(classify.evaluate(config, workspace, args.model)))


def cmd_classify_predict(args: argparse.Namespace) -> None:
    from discover import classify

    config, workspace, out = *_load(args), _out(args)
    catalog = classify.new_products(config, args.catalog)
    print(catalog.report.summary())
    frame = classify.predict(config, workspace, catalog.table, out, args.model)
    _print_registered_check(frame)
    print(f"predictions {out}")


def cmd_classify_find_mislabels(args: argparse.Namespace) -> None:
    from discover import classify

    config, workspace, out = *_load(args), _out(args)
    ranked = classify.find_mislabels(config, workspace, out)
    print(ranked.head(20).drop(columns=["row"]).to_string(index=False))
    print(f"mislabel candidates {out}  ({int(ranked['flagged'].sum()):,} flagged)")


def cmd_classify_place_proposals(args: argparse.Namespace) -> None:
    from discover import classify
    from discover.classify.placement import MISLABELLED, PROBABILITIES_FILE, WHOLE_CATEGORY, describe

    config, workspace = _load(args)
    run_id = args.run or workspace.latest_run_id()
    tree = classify.place_proposals(config, workspace, run_id)
    placed = [n for n in tree.nodes.values() if n.placement]
    mislabelled = [n for n in placed if n.placement["verdict"] == MISLABELLED]
    for node in mislabelled:
        own = " > ".join(tree.existing_parent(node.id).path)
        print(f"{' > '.join(node.path)}: {describe(node.placement, own)}")
    whole = sum(n.placement["verdict"] == WHOLE_CATEGORY for n in placed)
    print(
        f"{len(placed):,} proposals placed: {len(mislabelled):,} probably mislabelled, {whole:,} the whole of their "
        f"category, {len(placed) - len(mislabelled) - whole:,} candidate new subtypes"
    )
    print(f"tree       {workspace.run_dir(run_id) / 'tree.json'}")
    scores = workspace.run_dir(run_id) / PROBABILITIES_FILE
    print(f"scores     {scores}  (the explorer and the curated export place curated proposals by them)")


def cmd_classify_tune_image(args: argparse.Namespace) -> None:
    from discover.classify import stage
    from discover.classify.image_tuning import ImageTuning

    config, workspace = _load_ingested(args)
    size = config.embed.image.image_size if config.embed.image else ImageTuning.image_size
    tuning = ImageTuning(seed=config.seed, image_size=size, **({"epochs": args.epochs} if args.epochs else {}))
    folds = f" --folds {args.folds}" if args.folds > 1 else ""
    if args.pack:
        (pack,) = stage.tune_image(config, workspace, tuning, args.device, pack=Path(args.pack))
        print(
            f"pack       {pack}  (on a GPU machine: python -m discover.classify.image_tuning {pack} --out FILE{folds})"
        )
        return
    files = stage.tune_image(config, workspace, tuning, args.device, folds=args.folds)
    for file in files:
        print(f"image encoder {file}")
    weights = f"checkpoint: {files[0]}" if len(files) == 1 else f"checkpoints: [{', '.join(map(str, files))}]"
    print(f"use it: embed.image: {{name: efficientnet-lite0, image_size: {tuning.image_size}, {weights}}}")


def _print_registered_check(frame) -> None:
    """How many registered categories the model disputes, and the least likely of them."""
    from discover.classify.mislabels import check_summary

    if "flagged" not in frame.columns:
        print("no registered category to check: predictions only")
        return
    print(check_summary(frame))
    flagged = frame[frame["flagged"]].sort_values("p_registered", kind="stable")
    columns = ["product_id", "title", "registered_path", "p_registered", "predicted_path", "probability"]
    if len(flagged):
        print(flagged[columns].head(10).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _out(args: argparse.Namespace) -> Path:
    from discover.classify import MISLABELS_CSV, PREDICTIONS_CSV, output_path

    return output_path(
        args.workspace, args.out, {"predict": PREDICTIONS_CSV, "find-mislabels": MISLABELS_CSV}[args.action]
    )


def cmd_explore(args: argparse.Namespace) -> None:
    workspace = Workspace(args.workspace)
    app = Path(__file__).resolve().parent.parent / "apps" / "explorer.py"
    print(f"explorer: http://127.0.0.1:{args.port}  (workspace {workspace.root}); Ctrl-C stops it")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--workspace",
        str(workspace.root),
    ]
    raise SystemExit(run_in_own_group(command))


def run_in_own_group(command: list[str]) -> int:
    """Run `command` in a process group of its own and stop the whole group when we are stopped.

    SIGTERM, SIGINT or SIGHUP to `discover explore` (or its normal end) terminates Streamlit
    and anything it started, so no server is left listening.
    """
    child = subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509

    def stop(signum: int, _frame: object) -> None:
        # only leave child.wait() here: stopping the group from inside the handler waited on
        # the child while the interrupted wait held its lock, so every stop took the 15 s of
        # both grace periods; `finally` stops it once that wait has let go
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        return child.wait()
    finally:
        _stop_group(child)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_group(child: subprocess.Popen) -> None:
    """SIGTERM to the child's group, then SIGKILL after 10 s if anything still runs."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the leader is gone; make sure nothing it started lingers
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        return


def cmd_fetch_sample(args: argparse.Namespace) -> None:
    from discover.data.fetch import DEFAULT_SOURCE, fetch_sample

    target = fetch_sample(Path(args.destination), source=args.url or DEFAULT_SOURCE)
    print(f"sample catalog written to {target}; point ${DATA_ENV} at {target.parent}")


def add_classify(commands: argparse._SubParsersAction) -> None:
    """``discover classify ACTION CONFIG``: one parser per action, so each lists only its own
    options and an option of another action is an error, not silently ignored."""
    about = "the supervised multimodal hierarchical classifier"
    classify = commands.add_parser("classify", help=about, description=about)
    actions = classify.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, handler: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("config", help="YAML run config, e.g. configs/fashion-small.yaml")
        sub.add_argument("--workspace", default="workspace", help="workspace directory (default: ./workspace)")
        sub.set_defaults(handler=handler)
        return sub

    newest = "model id under models/classify (default: the newest)"
    sub = action("train", cmd_classify_train, "train on the catalog's categories; score the held-out test split")
    sub.add_argument(
        "--fine-tune",
        choices=["frozen", "partial", "full"],
        help="fine-tune both encoders end to end at this strategy (overrides classify.fine_tune's)",
    )
    sub.add_argument("--minutes", type=float, help="with --fine-tune: the time budget (overrides fine_tune.minutes)")
    sub = action("evaluate", cmd_classify_evaluate, "score a saved model on its test split again")
    sub.add_argument("--model", help=newest)
    sub.add_argument("--by", help="leave one group out over this catalog column (e.g. a shop id, gender)")
    sub = action("predict", cmd_classify_predict, "classify new products and check the categories they register")
    sub.add_argument(
        "--catalog", required=True, help="the new products: id, title and photo columns mapped like the config's"
    )
    sub.add_argument("--out", help="the CSV to write (default: WORKSPACE/classify/predictions.csv)")
    sub.add_argument("--model", help=newest)
    sub = action("find-mislabels", cmd_classify_find_mislabels, "rank products whose category looks wrong")
    sub.add_argument("--out", help="the CSV to write (default: WORKSPACE/classify/mislabels.csv)")
    sub = action("place-proposals", cmd_classify_place_proposals, "new subtype or mislabelled? for each proposal")
    sub.add_argument("--run", help="run id (default: the newest)")
    sub = action("tune-image", cmd_classify_tune_image, "train the image encoder on the catalog's categories")
    sub.add_argument("--device", default="cpu", help="torch device (cuda on a GPU machine)")
    sub.add_argument("--epochs", type=int, help="epochs (default 4)")
    sub.add_argument("--pack", help="write the photos and labels to this folder for another machine")
    sub.add_argument("--folds", type=int, default=1, help="N cross-fitted encoders, each blind to a fold (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="discover",
        description="Find the subcategories a product catalog is missing: embed photos and "
        "titles, cluster inside every existing category, propose named subcategories.",
        epilog="Typical use: discover run configs/fashion-small.yaml --workspace ws, then "
        "discover explore --workspace ws.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_text: str, config: bool = True):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if config:
            sub.add_argument("config", help="YAML run config, e.g. configs/fashion-small.yaml")
        sub.add_argument("--workspace", default="workspace", help="workspace directory (default: ./workspace)")
        sub.set_defaults(handler=handler)
        return sub

    add("ingest", cmd_ingest, "validate the catalog into the workspace and print the ingest report")
    engine_help = "where the work runs: this machine's processes, or a Ray cluster (overrides `engine`)"
    sub = add("embed", cmd_embed, "embed photos and titles (cached, resumable)")
    sub.add_argument("--engine", choices=["local", "ray"], help=engine_help)
    sub = add("run", cmd_run, "ingest → embed → discover → evaluate → export, then a summary")
    sub.add_argument("--run-id", help="name of the run directory (default: from config name and seed)")
    sub.add_argument("--engine", choices=["local", "ray"], help=engine_help)
    sub = add("evaluate", cmd_evaluate, "score a run against the truth column", config=False)
    sub.add_argument("--run", help="run id (default: the newest)")
    sub = add("export", cmd_export, "write a run's tree and assignments as JSON or CSV", config=False)
    sub.add_argument("--run", help="run id (default: the newest)")
    sub.add_argument("--format", choices=["json", "csv"], default="json")
    sub.add_argument("--curated", action="store_true", help="apply the curators' decisions first")
    sub.add_argument("--out", help="output directory (default: the run's export/ folder)")
    sub = add("pretrain", cmd_pretrain, "SimCLR self-supervised refinement of the image backbone")
    sub.add_argument("--minutes", type=float, help="time budget; overrides pretrain.minutes")
    add_classify(commands)
    sub = add("explore", cmd_explore, "start the Streamlit explorer on 127.0.0.1", config=False)
    sub.add_argument("--port", type=int, default=8501)
    sub = commands.add_parser("fetch-sample", help="download the public fashion-small sample (network)")
    sub.add_argument("destination", help="directory to write styles.csv and images/ into")
    sub.add_argument("--url", help="source: JSON list of Parquet URLs, or one Parquet URL")
    sub.set_defaults(handler=cmd_fetch_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()  # every command that runs torch on CPU is faster for it
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        args.handler(args)
    except DiscoverError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
