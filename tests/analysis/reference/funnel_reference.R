# Independent reference numbers for careloop.analysis.funnel, computed in base R.
#
# Spiegelhalter DJ. Funnel plots for comparing institutional performance.
# Stat Med 2005;24:1185-1202, appendix A.1.1: exact limits with interpolation,
#   r_p = smallest r with P(R <= r) >= p  (R's qbinom / qpois),
#   alpha = (P(R <= r_p) - p) / (P(R <= r_p) - P(R <= r_p - 1)),
#   limit = (r_p - alpha) / n.
# Spiegelhalter DJ. Handling over-dispersion of performance indicators.
# Qual Saf Health Care 2005;14:347-351: z-scores at the target, winsorised at
# 10% (R's quantile(type = 7)), phi = mean(z^2), additive tau^2 (DerSimonian-Laird).
#
# Run: Rscript tests/analysis/reference/funnel_reference.R > tests/analysis/reference/funnel_reference.Rout
options(digits = 15)
out <- function(...) cat(sprintf(...), "\n", sep = "")

exact <- function(p, n, theta, kind) {
  if (kind == "proportion") {
    r <- qbinom(p, n, theta); f <- pbinom(r, n, theta); fm <- pbinom(r - 1, n, theta)
  } else {
    r <- qpois(p, theta * n); f <- ppois(r, theta * n); fm <- ppois(r - 1, theta * n)
  }
  a <- ifelse(f > fm, (f - p) / (f - fm), 0)
  lim <- (r - a) / n
  if (kind == "proportion") pmin(pmax(lim, 0), 1) else pmax(lim, 0)
}

report <- function(name, num, den, kind) {
  theta <- sum(num) / sum(den)
  g <- if (kind == "proportion") theta * (1 - theta) else theta
  y <- num / den
  s <- sqrt(g / den)
  z <- (y - theta) / s
  q <- quantile(z, c(0.1, 0.9), type = 7)
  zw <- pmin(pmax(z, q[1]), q[2])
  I <- length(z)
  phi <- mean(zw^2)
  w <- 1 / s^2
  tau2 <- max(0, (I * phi - (I - 1)) / (sum(w) - sum(w^2) / sum(w)))
  out("%s target %.15g", name, theta)
  out("%s phi %.15g", name, phi)
  out("%s phi_p %.15g", name, pchisq(I * phi, I - 1, lower.tail = FALSE))
  out("%s tau2 %.15g", name, tau2)
  out("%s z %s", name, paste(sprintf("%.15g", z), collapse = " "))
  for (lv in c(0.95, 0.998)) {
    lo <- exact((1 - lv) / 2, den, theta, kind); hi <- exact(1 - (1 - lv) / 2, den, theta, kind)
    out("%s exact_lower_%g %s", name, lv, paste(sprintf("%.15g", lo), collapse = " "))
    out("%s exact_upper_%g %s", name, lv, paste(sprintf("%.15g", hi), collapse = " "))
    zq <- qnorm(1 - (1 - lv) / 2)
    out("%s normal_upper_%g %s", name, lv, paste(sprintf("%.15g", theta + zq * s), collapse = " "))
    out("%s multiplicative_upper_%g %s", name, lv,
        paste(sprintf("%.15g", theta + zq * s * sqrt(max(phi, 1))), collapse = " "))
    out("%s additive_upper_%g %s", name, lv,
        paste(sprintf("%.15g", theta + zq * sqrt(s^2 + tau2)), collapse = " "))
    out("%s additive_lower_%g %s", name, lv,
        paste(sprintf("%.15g", pmax(theta - zq * sqrt(s^2 + tau2), 0)), collapse = " "))
  }
}

# proportions: 12 units (tests/analysis/test_funnel.py PROPORTIONS)
cases  <- c(50, 80, 120, 150, 200, 260, 300, 420, 500, 640, 800, 1000)
deaths <- c(4, 12, 9, 20, 18, 40, 27, 39, 72, 51, 98, 95)
report("proportion", deaths, cases, "proportion")

# rates: 8 units, events per patient-day (tests/analysis/test_funnel.py RATES)
events <- c(3, 10, 25, 14, 40, 33, 60, 12)
days   <- c(1200, 2500, 6000, 5200, 9000, 11000, 12500, 8000)
report("rate", events, days, "rate")
cat("#", R.version.string, "\n")
