"""Study shapes: synthetic cohorts shaped like each shipped study config (config/studies/).

A shape fixes what a study's sample sheet looks like: its modalities (only those series are
written), the label column and class balance, the external cohort's share, and the body part
(``head``: the brain phantom with a glioma-like tumor; ``abdomen``: the liver phantom with a
lesion and the clinical covariates ``tumor_diameter`` and ``arterial_enhancement``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["STUDY_SHAPES", "StudyShape", "draw_labels"]


@dataclass(frozen=True)
class StudyShape:
    name: str
    modalities: tuple[str, ...]
    label: str  # sample-sheet column of the class (1 = the study's positive class)
    positive_fraction: float  # share of label 1, in the internal and in the external cohort
    external_fraction: float  # share of subjects in the `external` cohort
    body: str = "head"  # head or abdomen
    subjects: int = 40  # default cohort size of `oncoflow demo --study`

    @property
    def mask_space(self) -> str:
        return "arterial" if self.body == "abdomen" else "t1ce"


STUDY_SHAPES: dict[str, StudyShape] = {s.name: s for s in (
    # IDH1-mutant vs wild-type grade II/III glioma; 54/56 in the paper.
    StudyShape("idh1_tl_cnn2d", ("t2", "flair", "t1ce"), "idh1", 0.49, 0.0),
    # H3K27M-altered vs wild-type diffuse midline glioma; 200 internal + 35 external.
    StudyShape("h3k27m_wholebrain_cotrain", ("t1ce", "t2"), "h3k27m", 0.6, 0.15),
    # COCCluster 2 vs rest (24 of 110 in TCGA); the real cohort is ../shared/data/lgg_tcga.
    StudyShape("lgg_radiogenomics", ("t1", "flair", "t1ce"), "coc2", 0.22, 0.0),
    # Radiation necrosis (label 1; 42 of 234) vs glioma recurrence (192): the paper's accuracy
    # 0.91 = 0.18 x sensitivity 0.78 + 0.82 x specificity 0.94, so its positive class is necrosis.
    StudyShape("recurrence_vs_necrosis_3d", ("t1", "t2", "t1ce"), "necrosis", 0.18, 0.0),
    # Objective response of HCC to TACE (68 of 122) from arterial-phase liver MRI, plus two
    # clinical covariates.
    StudyShape("hcc_tace_radiomics_sr", ("arterial",), "response", 0.56, 0.0, body="abdomen"),
)}


def _one_cohort(rng: np.random.Generator, n: int, positive_fraction: float) -> np.ndarray:
    """``n`` labels with round(fraction * n) positives (both classes present when n >= 2)."""
    n_pos = int(round(positive_fraction * n))
    if n >= 2:
        n_pos = min(max(n_pos, 1), n - 1)
    return rng.permutation(np.r_[np.ones(n_pos, int), np.zeros(n - n_pos, int)])


def draw_labels(rng: np.random.Generator, n: int, n_external: int, positive_fraction: float) -> np.ndarray:
    """Labels of the internal subjects, then of the last ``n_external`` (the external cohort), each
    cohort holding the shape's class balance."""
    return np.r_[_one_cohort(rng, n - n_external, positive_fraction),
                 _one_cohort(rng, n_external, positive_fraction)].astype(int)
