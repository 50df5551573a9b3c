"""After the paper: a trained study as one portable bundle (``snakemake bundle``:
:mod:`oncoflow.predict.bundle`), applied to new exams with ``oncoflow predict``
(:mod:`oncoflow.predict.run` runs the workflow's front half, :mod:`oncoflow.predict.apply` scores the
new subjects, :mod:`oncoflow.predict.maps` writes the CNN models' explanation maps of them and
:mod:`oncoflow.predict.tumor_masks` the co-trained models' own tumor masks)."""
