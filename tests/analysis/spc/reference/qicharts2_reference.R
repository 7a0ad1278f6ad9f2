# Reference values for careloop.analysis.spc from qicharts2 itself.
#
# qicharts2 (Jacob Anhøj, GPL-3) is not shipped with careloop. With qicharts2
# installed (the values committed beside this script came from qicharts2 0.8.1,
# anhoej/qicharts2 commit 1b9487ecb3938d25a8a04578464f960d3a064f64, installed
# with R CMD INSTALL into R 4.2.2 from Debian bookworm with its r-cran-ggplot2
# and r-cran-scales) run
#
#   Rscript tests/analysis/spc/reference/qicharts2_reference.R
#
# (set QICHARTS2_LIB to the library folder if qicharts2 is not installed in the
# default one). For every case in qicharts2_cases.csv it calls
# qicharts2::qic(..., return.data = TRUE), the function an R user calls, and
# writes one row per point to qicharts2_points.csv. Dates (ISO text in the CSV
# files) are read as Date, as an R user would have them. library(qicharts2)
# sets options(qic.screenedmr = TRUE); the `screen` column of a case sets it.
#
# The first 59 cases were first produced from qicharts2's R/helper.functions.R
# at commit 03470c090b3db3fd1c7c9032eec0b63dc3b2636f (same limits code as
# 0.8.1); qic() 0.8.1 reproduces all of their points byte for byte. The
# cases from na_s on are Xbar, S, run and I charts of subgroups made unequal
# by missing values: qicharts2's own NA_test data (Montgomery's Table 6.3 with
# values removed; qicharts2 reproduces its stored tests/testthat/NA_test.rds)
# and Montgomery's Table 7.4 with values set missing, grouped by sample size,
# with the four agg.fun choices.

lib <- Sys.getenv("QICHARTS2_LIB")
suppressPackageStartupMessages(
  library(qicharts2, lib.loc = if (lib == "") NULL else lib)
)

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
    x <- as.Date(x)
  }
  y <- as.numeric(d[[case$y]])
  n <- if (case$n == "") NULL else as.numeric(d[[case$n]])
  options(qic.screenedmr = case$screen == "1")
  out <- suppressMessages(qic(
    x, y, n,
    chart = case$chart,
    agg.fun = case$agg,
    method = case$method,
    multiply = as.numeric(case$multiply),
    freeze = positions(case$freeze),
    part = positions(case$part),
    exclude = positions(case$exclude),
    cl = if (case$cl == "") NA * 1 else as.numeric(case$cl),
    return.data = TRUE
  ))
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

# crsignal() (internal to qicharts2) on random (n, crossings, longest run)
# triples, for the three methods.
set.seed(2024)
grid <- data.frame(n = sample(5:110, 3000, replace = TRUE))
grid$c <- sapply(grid$n, function(n) sample(0:(n - 1), 1))
grid$l <- sapply(grid$n, function(n) sample(1:min(n, 20), 1))
for (m in c("anhoej", "bestbox", "cutbox")) {
  grid[[m]] <- suppressMessages(mapply(
    function(n, c, l) qicharts2:::crsignal(n, c, l, method = m),
    grid$n, grid$c, grid$l
  ))
}
write.csv(grid, file.path(here, "qicharts2_crsignal.csv"), row.names = FALSE)
