# Reference numbers for tests/analysis/test_trials.py, from independent R code.
# Run:  Rscript tests/analysis/trials/reference/trials_reference.R > tests/analysis/trials/reference/trials_reference.txt
# R 4.2.2 with Debian's r-cran-rpact 3.3.4 (rpact: Wassmer & Pahlke) and base stats.
suppressMessages(library(rpact))
cat("# Lan-DeMets O'Brien-Fleming-type spending, two-sided alpha 0.05 (rpact: one-sided 0.025, sided = 2)\n")
for (k in c(2, 3, 4, 5)) {
  d <- getDesignGroupSequential(kMax = k, alpha = 0.05, sided = 2, typeOfDesign = "asOF")
  cat(sprintf("asOF k=%d info=%s z=%s\n", k, paste(sprintf("%.6f", d$informationRates), collapse = ","),
              paste(sprintf("%.6f", d$criticalValues), collapse = ",")))
}
d <- getDesignGroupSequential(informationRates = c(0.3, 0.7, 1), alpha = 0.05, sided = 2, typeOfDesign = "asOF")
cat(sprintf("asOF unequal info=%s z=%s\n", paste(sprintf("%.6f", d$informationRates), collapse = ","),
            paste(sprintf("%.6f", d$criticalValues), collapse = ",")))
d <- getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1, typeOfDesign = "asOF")
cat(sprintf("asOF one-sided 0.025 k=3 z=%s\n", paste(sprintf("%.6f", d$criticalValues), collapse = ",")))
cat("# Classic O'Brien-Fleming (1979) boundaries, equally spaced looks, two-sided alpha 0.05\n")
for (k in c(3, 5)) {
  d <- getDesignGroupSequential(kMax = k, alpha = 0.05, sided = 2, typeOfDesign = "OF")
  cat(sprintf("OF k=%d z=%s\n", k, paste(sprintf("%.6f", d$criticalValues), collapse = ",")))
}
cat("# power.prop.test (base R): n per group\n")
for (a in list(c(0.2, 0.3, 0.8), c(0.1, 0.15, 0.9), c(0.5, 0.6, 0.8)))
  cat(sprintf("prop p1=%.2f p2=%.2f power=%.2f n=%.6f\n", a[1], a[2], a[3],
              power.prop.test(p1 = a[1], p2 = a[2], power = a[3], sig.level = 0.05)$n))
cat("# power.t.test (base R): n per group\n")
for (a in list(c(5, 10, 0.8), c(1, 2, 0.9)))
  cat(sprintf("mean delta=%.2f sd=%.2f power=%.2f n=%.6f\n", a[1], a[2], a[3],
              power.t.test(delta = a[1], sd = a[2], power = a[3], sig.level = 0.05)$n))
