#!/usr/bin/env Rscript
# Reference values for tests/test_metrics.py, computed with R's pROC.
# Regenerate (from the repository root, needs R + pROC, e.g. Debian r-cran-proc):
#   Rscript tests/data/proc_reference/make_reference.R
# Writes, next to this script:
#   datasets.tsv   dataset, y (0/1), score_a, score_b  (deterministic, set.seed below)
#   reference.tsv  dataset, quantity, value            (pROC outputs, 17 significant digits)
suppressMessages(library(pROC))

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

set.seed(20240601, kind = "Mersenne-Twister", normal.kind = "Inversion", sample.kind = "Rejection")

# Two correlated scores per patient: a shared latent signal plus independent noise.
make <- function(name, n_pos, n_neg, shift, digits) {
  y <- sample(c(rep(1L, n_pos), rep(0L, n_neg)))
  latent <- rnorm(length(y), mean = shift * y)
  a <- plogis(latent + rnorm(length(y), sd = 0.5))
  b <- plogis(0.7 * latent + rnorm(length(y), sd = 0.9))
  data.frame(dataset = name, y = y, score_a = round(a, digits), score_b = round(b, digits))
}
d <- rbind(
  make("small", 9, 11, 1.2, 4),          # n = 20
  make("ties", 90, 110, 1.0, 1),         # n = 200, scores rounded to 1 decimal: heavy ties
  make("imbalanced", 18, 82, 1.3, 4),    # n = 100, 18 positives / 82 negatives
  make("nearperfect", 30, 30, 4.5, 4),   # n = 60, AUC close to 1
  make("large", 300, 700, 0.8, 4)        # n = 1000
)
# Degenerate: score_a constant (AUC 0.5, zero variance), score_b separates perfectly (AUC 1).
y <- rep(c(0L, 1L), each = 6)
d <- rbind(d, data.frame(dataset = "degenerate", y = y, score_a = 0.5,
                         score_b = round(c(runif(6, 0, 0.4), runif(6, 0.6, 1)), 4)))
write.table(d, file.path(here, "datasets.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)

# Compute everything from the file as written, so Python and R see identical numbers.
d <- read.delim(file.path(here, "datasets.tsv"))
fmt <- function(x) sprintf("%.17g", x)
rows <- list()
put <- function(ds, q, v) rows[[length(rows) + 1]] <<- data.frame(dataset = ds, quantity = q, value = v)

for (ds in unique(d$dataset)) {
  s <- d[d$dataset == ds, ]
  r <- list(a = roc(s$y, s$score_a, levels = c(0, 1), direction = "<", quiet = TRUE),
            b = roc(s$y, s$score_b, levels = c(0, 1), direction = "<", quiet = TRUE))
  for (k in names(r)) {
    put(ds, paste0("auc_", k), fmt(as.numeric(auc(r[[k]]))))
    ci <- ci.auc(r[[k]], method = "delong", conf.level = 0.95)
    put(ds, paste0("delong_low_", k), fmt(ci[1]))
    put(ds, paste0("delong_high_", k), fmt(ci[3]))
    # Stratified percentile bootstrap: 2,000 resamples (pROC's default size) and 50,000.
    # A 2,000-resample bound has a Monte-Carlo SD of up to ~0.008 on these data, so the
    # tests compare against the 50,000-resample values (SD < 0.002).
    for (nb in c(2000, 50000)) {
      set.seed(1)
      bs <- ci.auc(r[[k]], method = "bootstrap", boot.n = nb, boot.stratified = TRUE,
                   conf.level = 0.95, progress = "none")
      put(ds, sprintf("boot%d_low_%s", nb, k), fmt(bs[1]))
      put(ds, sprintf("boot%d_high_%s", nb, k), fmt(bs[3]))
    }
    # Youden-optimal threshold(s); several when tied.
    best <- coords(r[[k]], "best", best.method = "youden", ret = "threshold", transpose = FALSE)
    put(ds, paste0("youden_", k), paste(fmt(best$threshold), collapse = ";"))
    # Confusion-matrix metrics at 0.5 (pROC: positive iff score >= threshold).
    cm <- coords(r[[k]], 0.5, input = "threshold",
                 ret = c("sensitivity", "specificity", "ppv", "npv", "accuracy"), transpose = FALSE)
    for (q in names(cm)) put(ds, paste0(q, "_", k, "_at_0.5"), fmt(cm[[q]]))
  }
  t <- roc.test(r$a, r$b, method = "delong", paired = TRUE)
  put(ds, "delong_z", fmt(unname(t$statistic)))
  put(ds, "delong_p", fmt(t$p.value))
}
out <- do.call(rbind, rows)
out <- rbind(data.frame(dataset = "_meta", quantity = c("pROC_version", "R_version"),
                        value = c(as.character(packageVersion("pROC")), R.version$version.string)), out)
write.table(out, file.path(here, "reference.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
