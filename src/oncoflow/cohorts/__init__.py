"""Sample-sheet writers for public cohorts (their own folder layouts and clinical tables)."""

from oncoflow.cohorts.lgg_tcga import write_lgg_tcga_sheet

COHORTS = {"lgg_tcga": write_lgg_tcga_sheet}

__all__ = ["COHORTS", "write_lgg_tcga_sheet"]
