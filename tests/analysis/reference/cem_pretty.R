# Reference for careloop.analysis.matching.r_pretty (the L1 histogram breaks of
# cem's imbalance()): R's own pretty() on fixed and random ranges.
# Run:  Rscript tests/analysis/reference/cem_pretty.R > tests/analysis/reference/cem_pretty.txt
# Output: one line per case, "lo hi n breaks" with min.n = 1, 17 significant digits.
# Produced with R 4.2.2 (Debian r-base-core 4.2.2.20221110-2).
set.seed(1)
cases <- list(c(0, 1), c(17, 55), c(0, 39570.68), c(3, 16), c(-2.5, 7.3), c(0, 0), c(5, 5),
              c(0.001, 0.0013), c(-100, -3), c(1e6, 1e6 + 3))
for (i in 1:20) {
  a <- rnorm(1, 0, 10^sample(-3:5, 1))
  cases[[length(cases) + 1]] <- sort(c(a, a + abs(rnorm(1, 0, 10^sample(-3:5, 1)))))
}
for (cs in cases) for (n in c(1, 5, 12, 33))
  cat(sprintf("%.17g %.17g %d %s\n", cs[1], cs[2], n,
              paste(sprintf("%.17g", pretty(cs, n, 1)), collapse = ",")))
