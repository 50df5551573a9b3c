"""Command line: `oncoflow demo` writes the synthetic demo cohort (with `--study`, one shaped like a
study config); `oncoflow cohort-sheet` writes the sample sheet of a public cohort; `oncoflow
verify-archive` checks a paper archive made by `snakemake archive`; `oncoflow predict` applies a study's
bundle (`snakemake bundle`) to new exams."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oncoflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="write the deterministic synthetic demo cohort")
    demo.add_argument("--study", default=None, help="a cohort shaped like config/studies/<study>.yaml "
                      "(its modalities, label column, class balance, external cohort; the liver "
                      "phantom for hcc_tace_radiomics_sr); default: the demo cohort")
    demo.add_argument("--out", type=Path, default=None, help="default data/demo, or data/<study>")
    demo.add_argument("--subjects", type=int, default=None, help="default 40")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--voxel-scale", type=float, default=1.0,
                      help="multiplies voxel sizes (2 = 8x fewer voxels, for quick tests)")
    demo.add_argument("--external-fraction", type=float, default=None,
                      help="default 0, or the study shape's")
    demo.add_argument("--force", action="store_true", help="rewrite an existing cohort")
    sheet = sub.add_parser("cohort-sheet", help="write the sample sheet of a public cohort from "
                           "its own folder layout (e.g. lgg_tcga)")
    sheet.add_argument("cohort", choices=["lgg_tcga"])
    sheet.add_argument("--data", type=Path, required=True, help="the cohort's folder")
    sheet.add_argument("--out", type=Path, required=True, help="the sample sheet (.tsv) to write")
    verify = sub.add_parser("verify-archive", help="restore an archive (snakemake archive) and "
                            "re-check every checksum")
    verify.add_argument("archive", type=Path, help="the .tar.gz")
    verify.add_argument("--into", type=Path, default=None,
                        help="restore here and keep it (default: a temporary folder)")
    predict = sub.add_parser("predict", help="apply a study's bundle (snakemake bundle) to a new sample "
                             "sheet, here: results/<study>/predict/<name>/ (nothing is trained)")
    predict.add_argument("bundle", type=Path, help="the bundle (.tar.gz)")
    predict.add_argument("samples", type=Path, help="the new sample sheet (label column optional)")
    predict.add_argument("--name", default=None, help="results/<study>/predict/<name>/ (default: the "
                         "sheet's name, or its folder's for samples.tsv)")
    predict.add_argument("--cores", type=int, default=1)
    predict.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="change a setting of the bundle's config (e.g. evaluate.ci_method=bootstrap); "
                         "one that shapes the models' input (ingest, preprocess, crop) is refused")
    predict.epilog = "Arguments after -- go to snakemake (e.g. -- --dry-run)."
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:len(argv) - len(extra) - 1] if "--" in argv else argv)
    if extra and args.command != "predict":
        parser.error("arguments after -- are for `oncoflow predict` only")

    if args.command == "predict":
        from oncoflow.predict.run import PredictError, run

        try:
            return run(args.bundle, args.samples, name=args.name, cores=args.cores, settings=args.set,
                       extra=extra)
        except PredictError as exc:
            print(f"predict: {exc}", file=sys.stderr)
            return 2

    if args.command == "verify-archive":
        from oncoflow.report.archive import archive_sha256, verify_archive

        if not args.archive.is_file():
            print(f"verify-archive: {args.archive} not found", file=sys.stderr)
            return 2
        result = verify_archive(args.archive, args.into)
        for problem in result.problems:
            print(f"FAIL {problem}", file=sys.stderr)
        where = f" (restored in {result.root})" if args.into else ""
        if not result.ok:
            print(f"{args.archive}: {len(result.problems)} problem(s), {result.checked} files "
                  f"checked{where}", file=sys.stderr)
            return 1
        print(f"{args.archive}: OK, {result.checked} files match MANIFEST.sha256 and "
              f"provenance.json{where}")
        print(f"sha256 of the archive itself: {archive_sha256(args.archive)} (quote it in the paper: only a "
              "checksum kept outside the archive shows it was not edited)")
        return 0

    if args.command == "cohort-sheet":
        from oncoflow.cohorts import COHORTS

        path = COHORTS[args.cohort](args.data, args.out)
        print(f"wrote {path}", file=sys.stderr)
        return 0

    if args.command == "demo":
        from oncoflow.demo import STUDY_SHAPES, make_demo_cohort

        shape = None
        if args.study is not None:
            if args.study not in STUDY_SHAPES:
                print(f"demo: --study {args.study!r}: no such study shape (choose from "
                      f"{', '.join(STUDY_SHAPES)})", file=sys.stderr)
                return 2
            shape = STUDY_SHAPES[args.study]
        out = args.out or Path("data") / (shape.name if shape else "demo")
        subjects = args.subjects or (shape.subjects if shape else 40)
        external = args.external_fraction
        if external is None:
            external = shape.external_fraction if shape else 0.0
        sheet = out / "samples.tsv"
        if sheet.exists() and not args.force:
            print(f"{sheet} exists; keeping it (--force to rewrite)", file=sys.stderr)
            return 0
        start = time.time()
        sheet = make_demo_cohort(out, subjects, args.seed, voxel_scale=args.voxel_scale,
                                 external_fraction=external, shape=shape)
        print(f"wrote {sheet} ({subjects} subjects) in {time.time() - start:.0f} s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
