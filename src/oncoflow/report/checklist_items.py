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


CLAIM_2024 = Checklist("claim", "CLAIM: Checklist for Artificial Intelligence in Medical Imaging", "2024 update (44 items)",
                       "10.1148/ryai.240300", _items("""
1 | Title | AI method and its category named
2 | Abstract | summary of design, methods, results, conclusions
3 | Introduction | clinical background and role of the AI
4 | Introduction | aims, objectives and hypotheses
5 | Methods: study design | prospective or retrospective
6 | Methods: study design | study goal
7 | Methods: data | data sources
8 | Methods: data | inclusion and exclusion criteria
9 | Methods: data | pre-processing
10 | Methods: data | data subsets selected
11 | Methods: data | de-identification
12 | Methods: data | handling of missing data
13 | Methods: data | image acquisition protocol
14 | Methods: reference standard | how the reference standard was obtained
15 | Methods: reference standard | why this reference standard
16 | Methods: reference standard | who annotated
17 | Methods: reference standard | annotation of the test set
18 | Methods: reference standard | inter- and intra-rater variability
19 | Methods: data partitions | how patients were assigned to partitions
20 | Methods: data partitions | unit kept apart between partitions
21 | Methods: testing data | intended sample size
22 | Methods: model | model description
23 | Methods: model | software and versions
24 | Methods: model | parameter initialisation
25 | Methods: training | training approach and hyperparameters
26 | Methods: training | how the final model was chosen
27 | Methods: training | ensembling
28 | Methods: evaluation | performance metrics
29 | Methods: evaluation | significance and uncertainty
30 | Methods: evaluation | robustness or sensitivity analysis
31 | Methods: evaluation | explainability or interpretability methods and their validation
32 | Methods: evaluation | evaluation on internal data
33 | Methods: evaluation | testing on external data
34 | Methods: evaluation | clinical trial registration
35 | Results: data | patients included and excluded
36 | Results: data | characteristics per partition
37 | Results: model performance | metrics with statistical uncertainty
38 | Results: model performance | diagnostic performance with precision
39 | Results: model performance | failure analysis
40 | Discussion | limitations
41 | Discussion | implications for practice
42 | Other information | protocol or technical details
43 | Other information | availability of software, model and data
44 | Other information | funding
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
8b | Methods: outcome | qualifications of outcome assessors
8c | Methods: outcome | blinding of outcome assessment
9a | Methods: predictors | choice of predictors
9b | Methods: predictors | predictor definitions and measurement
9c | Methods: predictors | qualifications of predictor assessors
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
23a | Results: model performance | performance with confidence intervals, key subgroups
23b | Results: model performance | heterogeneity of performance across clusters
24 | Results: model updating | results of updating
25 | Discussion | interpretation
26 | Discussion | limitations
27a | Discussion | handling of poor or missing input data in use
27b | Discussion | user interaction and expertise needed
27c | Discussion | future research and generalisability
"""))

CLEAR_2023 = Checklist("clear", "CLEAR: CheckList for EvaluAtion of Radiomics research", "v1.0, 2023 (58 items)",
                       "10.1186/s13244-023-01415-8", _items("""
1 | Title | radiomics named in the title
2 | Abstract | structured abstract
3 | Keywords | radiomics keywords
4 | Introduction | scientific or clinical background
5 | Introduction | why a radiomic approach
6 | Introduction | objectives
7 | Methods: study design | checklists followed
8 | Methods: study design | ethics, consent, data protection
9 | Methods: study design | sample size or power
10 | Methods: study design | retrospective or prospective
11 | Methods: study design | eligibility criteria
12 | Methods: study design | flowchart of the technical pipeline
13 | Methods: data | data source
14 | Methods: data | overlap with earlier studies
15 | Methods: data | how the data were split
16 | Methods: data | imaging protocol
17 | Methods: data | non-radiomic predictors
18 | Methods: data | reference standard
19 | Methods: segmentation | segmentation strategy
20 | Methods: segmentation | who segmented
21 | Methods: pre-processing | image pre-processing
22 | Methods: pre-processing | resampling
23 | Methods: pre-processing | discretisation
24 | Methods: pre-processing | image types
25 | Methods: feature extraction | extraction software and version
26 | Methods: feature extraction | feature classes
27 | Methods: feature extraction | number of features
28 | Methods: feature extraction | defaults for other parameters
29 | Methods: data preparation | missing data
30 | Methods: data preparation | class imbalance
31 | Methods: data preparation | segmentation reliability
32 | Methods: data preparation | feature scaling
33 | Methods: data preparation | dimension reduction
34 | Methods: modeling | algorithm
35 | Methods: modeling | training and tuning
36 | Methods: modeling | confounders
37 | Methods: modeling | model selection
38 | Methods: evaluation | internal or external testing
39 | Methods: evaluation | metrics and why
40 | Methods: evaluation | uncertainty
41 | Methods: evaluation | statistical comparison of models
42 | Methods: evaluation | comparison with non-radiomic and combined models
43 | Methods: evaluation | interpretability
44 | Results | characteristics across partitions
45 | Results | participant flow
46 | Results | feature statistics
47 | Results | model performance
48 | Results | comparison with non-radiomic and combined models
49 | Discussion | main findings
50 | Discussion | earlier work
51 | Discussion | practical implications
52 | Discussion | strengths and limitations
53 | Open science | images and segmentations shared (not essential)
54 | Open science | radiomic features shared
55 | Open science | pre-processing code or settings shared
56 | Open science | modeling code shared
57 | Open science | final model files shared
58 | Open science | ready-to-use system shared (not essential)
"""))

CHECKLISTS = {c.name: c for c in (CLAIM_2024, TRIPOD_AI_2024, CLEAR_2023)}

# Where the numbering was checked (the `search` tool, 2026-11-30); see tests/test_checklists.py.
VERIFIED = {
    "claim": "all 44 against two public copies of the CLAIM 2024 table that agree item by item (an HTML "
             "checklist citing Tejani et al., Radiol Artif Intell 2024;6(4):e240300, and a guideline-item "
             "ontology table listing CLAIM items 01-44; both found with find_string); item 20 also against a "
             "CLAIM 2024 item page and a filled CLAIM 2024 checklist; item 31 (explainability or interpretability "
             "methods, if applied, and their validation) also with the search tool (docs corpus): the CLAIM 2024 "
             "table of Aperivue/medsci-skills (skills/check-reporting/references/checklists/CLAIM_2024.md, one "
             "commit of which states it was compared item by item with PMC11304031)",
    "tripod_ai": "every number 1-27c against a public filled TRIPOD+AI checklist that quotes the BMJ 2024 item text "
                 "(found with the find_string tool); 27 items: tripod-statement.org/scope; items 1-6c also against "
                 "the table at skills.sh (tripod-check)",
    "clear": "all 58 against a public Markdown copy of the CLEAR table (itself checked against PMC10160267 Table 1; "
             "found with find_string); items 7-13 against clearchecklist.github.io/clear_checklist/CLEAR-S.html and "
             "item 53 (first Open Science item, 53-58) against radiomic.github.io/CLEAR-E3",
}
