# Reference values for careloop.analysis.spc from qicharts2's own calculations.
#
# qicharts2 (Jacob Anhøj, GPL-3) is not shipped with careloop. Point
# QICHARTS2_HELPERS at the file R/helper.functions.R of a qicharts2 checkout
# (the values committed beside this script came from anhoej/qicharts2 commit
# 03470c090b3db3fd1c7c9032eec0b63dc3b2636f, version 0.7.x, run in R 4.2.2) and run
#
#   QICHARTS2_HELPERS=/path/to/qicharts2/R/helper.functions.R \
#     Rscript tests/analysis/reference/qicharts2_reference.R
#
# It reads the cases in qicharts2_cases.csv, prepares each data set the way
# qicharts2::qic() does before it calls the (internal) qic.agg() - missing
# denominators, freeze ignored when part is given, dates to POSIXct, text x
# as "dots only" - and writes one row per point to qicharts2_points.csv.
# qicharts2 is attached by library() in normal use, which sets
# options(qic.screenedmr = TRUE); the `screen` column of a case sets it here.

helpers <- Sys.getenv("QICHARTS2_HELPERS")
if (helpers == "") stop("set QICHARTS2_HELPERS to qicharts2's R/helper.functions.R")
source(helpers)

here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
data_dir <- file.path(here, "..", "..", "data", "qicharts2")
cases <- read.csv(file.path(here, "qicharts2_cases.csv"), colClasses = "character")

positions <- function(s) if (is.na(s) || s == "") NULL else as.numeric(strsplit(s, ";")[[1]])

qic_points <- function(case) {
  d <- read.csv(file.path(data_dir, case$file), stringsAsFactors = FALSE)
  if (case$filter != "") {
    for (f in strsplit(case$filter, ";")[[1]]) {
      kv <- strsplit(f, "=")[[1]]
      d <- d[d[[kv[1]]] == kv[2], ]
    }
  }
  x <- d[[case$x]]
  if (is.character(x) && all(grepl("^\\d{4}-\\d{2}-\\d{2}$", x[!is.na(x)]))) {
    x <- as.POSIXct(as.character(as.Date(x)), tz = "UTC")
  }
  y <- as.numeric(d[[case$y]])
  got.n <- case$n != ""
  n <- if (got.n) as.numeric(d[[case$n]]) else NA
  if (got.n) {
    cases_ok <- stats::complete.cases(y, n)
    y[!cases_ok] <- NA
    n[!cases_ok] <- NA
  }
  part <- positions(case$part)
  freeze <- positions(case$freeze)
  if (is.null(freeze) || !is.null(part)) freeze <- Inf
  exclude <- positions(case$exclude)
  if (is.null(exclude)) exclude <- Inf
  cl <- if (case$cl == "") NA * 1 else as.numeric(case$cl)
  dots.only <- is.factor(x) || mode(x) != "numeric"
  options(qic.screenedmr = case$screen == "1")
  frame <- data.frame(x, y, n, facet1 = 1, facet2 = 1, cl, target = NA * 1)
  out <- qic.agg(frame, got.n, part, case$agg, freeze, exclude,
                 get(paste0("qic.", case$chart)), as.numeric(case$multiply),
                 dots.only, case$chart, case$method, TRUE)
  data.frame(case = case$case, position = out$xx, x = as.character(out$x), y = out$y,
             n = out$n, cl = out$cl, ucl = out$ucl, lcl = out$lcl, part = out$part,
             include = out$include, sigma_signal = out$sigma.signal,
             runs_signal = out$runs.signal, n_obs = out$n.obs, n_useful = out$n.useful,
             longest_run = out$longest.run, longest_run_max = out$longest.run.max,
             n_crossings = out$n.crossings, n_crossings_min = out$n.crossings.min)
}

rows <- do.call(rbind, lapply(seq_len(nrow(cases)), function(i) qic_points(cases[i, ])))
write.csv(rows, file.path(here, "qicharts2_points.csv"), row.names = FALSE, na = "")
cat("wrote", nrow(rows), "points of", nrow(cases), "cases\n")

# The runs limits for 1..1000 useful points, from qicharts2's runs.analysis() formulas.
limits <- data.frame(n_useful = 1:1000)
limits$longest_run_max <- round(log2(limits$n_useful)) + 3
limits$n_crossings_min <- stats::qbinom(0.05, pmax(limits$n_useful - 1, 0), 0.5)
write.csv(limits, file.path(here, "qicharts2_runs_limits.csv"), row.names = FALSE)

# crsignal() on random (n, crossings, longest run) triples, for the three methods.
set.seed(2024)
grid <- data.frame(n = sample(5:110, 3000, replace = TRUE))
grid$c <- sapply(grid$n, function(n) sample(0:(n - 1), 1))
grid$l <- sapply(grid$n, function(n) sample(1:min(n, 20), 1))
for (m in c("anhoej", "bestbox", "cutbox")) {
  grid[[m]] <- mapply(function(n, c, l) crsignal(n, c, l, method = m), grid$n, grid$c, grid$l)
}
write.csv(grid, file.path(here, "qicharts2_crsignal.csv"), row.names = FALSE)
