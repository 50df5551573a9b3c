"""Item numbering of the reporting checklists that oncoflow fills (oncoflow.report.checklists).

Topics are short paraphrases in our own words, not the publishers' text; read the checklist
itself for what each item asks. Where the numbering was verified is in VERIFIED.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Checklist:
    name: str
    title: str
    version: str
    doi: str
    items: tuple[tuple[str, str, str], ...]  # (number, section, topic)


def _items(text: str) -> tuple[tuple[str, str, str], ...]:
    rows = []
    for line in text.strip().splitlines():
        number, section, topic = (part.strip() for part in line.split("|"))
        rows.append((number, section, topic))
    return tuple(rows)


CLAIM_2020 = Checklist("claim", "CLAIM: Checklist for Artificial Intelligence in Medical Imaging", "2020 (42 items)",
                       "10.1148/ryai.2020200029", _items("""
1 | Title and abstract | AI method named in the title
2 | Title and abstract | structured abstract
3 | Introduction | clinical background and role of the AI
4 | Introduction | objectives and hypotheses
5 | Methods: study design | prospective or retrospective
6 | Methods: study design | study goal
7 | Methods: data | data sources
8 | Methods: data | eligibility criteria
9 | Methods: data | preprocessing steps
10 | Methods: data | data subsets selected
11 | Methods: data | definitions of data elements
12 | Methods: data | de-identification
13 | Methods: data | handling of missing data
14 | Methods: ground truth | reference standard definition
15 | Methods: ground truth | why this reference standard
16 | Methods: ground truth | who annotated, and their qualifications
17 | Methods: ground truth | annotation tools
18 | Methods: ground truth | inter- and intra-rater variability
19 | Methods: data partitions | intended sample size and its basis
20 | Methods: data partitions | how patients were assigned to partitions
21 | Methods: data partitions | level at which partitions are disjoint
22 | Methods: model | model description
23 | Methods: model | software and versions
24 | Methods: model | parameter initialisation
25 | Methods: training | training details and hyperparameters
26 | Methods: training | how the final model was chosen
27 | Methods: training | ensembling
28 | Methods: evaluation | performance metrics
29 | Methods: evaluation | uncertainty and significance
30 | Methods: evaluation | robustness or sensitivity analysis
31 | Methods: evaluation | explainability methods
32 | Methods: evaluation | external test data
33 | Results: data | participant flow
34 | Results: data | characteristics per partition
35 | Results: model performance | performance on every partition
36 | Results: model performance | accuracy estimates with precision
37 | Results: model performance | failure analysis
38 | Discussion | limitations
39 | Discussion | implications for practice
40 | Other information | registration
41 | Other information | protocol, data and code access
42 | Other information | funding
"""))

TRIPOD_AI_2024 = Checklist("tripod_ai", "TRIPOD+AI", "2024 (27 items with sub-items)", "10.1136/bmj-2023-078378", _items("""
1 | Title | prediction model study, population, outcome
2 | Abstract | structured abstract (TRIPOD+AI for Abstracts)
3a | Introduction | healthcare context and rationale
3b | Introduction | target population and intended use
3c | Introduction | known health inequalities
4 | Introduction | objectives (development, evaluation)
5a | Methods: data | data sources
5b | Methods: data | dates of data collection
6a | Methods: participants | setting and centres
6b | Methods: participants | eligibility criteria
6c | Methods: participants | treatments received
7 | Methods: data preparation | data preprocessing and quality checks
8a | Methods: outcome | outcome definition and timing
8b | Methods: outcome | outcome assessors and blinding
8c | Methods: outcome | consistency of the outcome assessment
9a | Methods: predictors | choice of predictors
9b | Methods: predictors | predictor definitions and measurement
9c | Methods: predictors | predictor assessors and blinding
10 | Methods: sample size | how the sample size was arrived at
11 | Methods: missing data | handling of missing data
12a | Methods: analysis | how the data were used (development, evaluation)
12b | Methods: analysis | handling of predictors
12c | Methods: analysis | model type, building, tuning and internal validation
12d | Methods: analysis | heterogeneity across clusters
12e | Methods: analysis | performance measures
12f | Methods: analysis | model updating or recalibration
12g | Methods: analysis | how predictions are computed
13 | Methods: class imbalance | class imbalance methods
14 | Methods: fairness | fairness approaches
15 | Methods: model output | model output and thresholds
16 | Methods: training versus evaluation | differences between development and evaluation data
17 | Methods: ethics | ethical approval and consent
18a | Open science | funding
18b | Open science | conflicts of interest
18c | Open science | protocol
18d | Open science | registration
18e | Open science | data sharing
18f | Open science | code sharing
19 | Patient and public involvement | patient and public involvement
20a | Results: participants | participant flow
20b | Results: participants | characteristics
20c | Results: participants | development versus evaluation data
21 | Results: model development | participants and outcome events per analysis
22 | Results: model specification | full model specification
23a | Results: model performance | performance with confidence intervals
23b | Results: model performance | performance in subgroups
24 | Results: model updating | results of updating
25 | Discussion | interpretation
26 | Discussion | limitations
27a | Discussion | handling of poor or missing input data in use
27b | Discussion | user interaction and expertise needed
27c | Discussion | future research and generalisability
"""))

CHECKLISTS = {c.name: c for c in (CLAIM_2020, TRIPOD_AI_2024)}

# Where the numbering was checked (the `search` tool, 2026-11-30); see tests/test_checklists.py.
VERIFIED = {
    "claim": "items 1-10b layout: CLAIM table in the BMJ Health Care Inform article (informatics.bmj.com, Table 4); "
             "items 33 (flow), 34 (characteristics by partition), 41 (protocol/data/code), 42 (funding) and the total "
             "of 42: Gao et al., J Evid Based Med 2026, doi:10.1111/jebm.70141; PMC8017414 (the 2020 paper)",
    "tripod_ai": "items 1-6c: the TRIPOD+AI table reproduced at skills.sh (tripod-check); 27 items: "
                 "tripod-statement.org/scope; last item 27c: TRIPOD+AI adherence tool summary (thedosenews.com). "
                 "Sub-items 7-27c follow the BMJ 2024 paper (doi 10.1136/bmj-2023-078378) as recalled, NOT yet "
                 "checked against a readable copy of its table: check before relying on them",
}
