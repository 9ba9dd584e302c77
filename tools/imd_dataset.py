"""Build ``engine/datasets/england_imd_2019.parquet`` from the staged IoD2019 files.

Run from a source checkout, with the staged files of the English Indices of Deprivation 2019 (their
SOURCE.md gives provenance and checks)::

    python -m tools.imd_dataset /work/shared/data/england_imd_2019

Keeps, per LSOA: code and name, local authority district code and name, the seven published domain
ranks (1 = most deprived), and the published IMD score (File 7, 3 dp), rank and decile as reference
columns. Rows in the order of File 2; zstd-compressed Parquet. Values are not changed.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import polars as pl

from engine.resources import DATASET_DIR

#: Column names of the shipped table for the columns 5 … 20 of File 2 (rank and decile pairs).
DOMAINS = ("imd", "income", "employment", "education", "health", "crime", "barriers", "living")


def build(folder: Path) -> pl.DataFrame:
    """The shipped table from File 2 (ranks and deciles) and the File 7 IMD score."""
    with gzip.open(folder / "File_2_-_IoD2019_Domains_of_Deprivation.csv.gz") as handle:
        f2 = pl.read_csv(handle.read())
    c = f2.columns
    table = f2.select(
        pl.col(c[0]).alias("lsoa_code"), pl.col(c[1]).alias("lsoa_name"),
        pl.col(c[2]).alias("la_code"), pl.col(c[3]).alias("la_name"),
        *[pl.col(c[6 + 2 * i]).cast(pl.Int32).alias(f"{d}_rank") for i, d in enumerate(DOMAINS[1:])],
        pl.col(c[4]).cast(pl.Int32).alias("imd_rank"), pl.col(c[5]).cast(pl.Int8).alias("imd_decile"),
    )
    score = pl.read_csv(folder / "imd2019_lsoa_imd_score_from_file7.csv").select("lsoa_code", "imd_score")
    table = table.join(score, on="lsoa_code", how="left", maintain_order="left")
    if table["imd_score"].null_count() or table.height != 32_844:
        raise ValueError("File 2 and the File 7 score do not cover the same 32,844 LSOAs")
    return table.select(*table.columns[:11], "imd_score", "imd_rank", "imd_decile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder with the staged IoD2019 files")
    args = parser.parse_args()
    target = DATASET_DIR / "england_imd_2019.parquet"
    build(args.folder).write_parquet(target, compression="zstd", compression_level=19, statistics=False)
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
