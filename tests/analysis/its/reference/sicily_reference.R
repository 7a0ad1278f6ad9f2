# Independent reference numbers for careloop.analysis.its, computed with R's
# glm() (stats), sandwich::NeweyWest and stats::arima on the Lopez Bernal,
# Cummins & Gasparrini (IJE 2017) Sicily data.
#
# The three tutorial models are specified as in the tutorial's R code
# (gasparrini/2017_lopezbernal_IJE_codedata, Rcode.R): model1 Poisson with
# offset(log(stdpop)), model2 quasi-Poisson, model3 quasi-Poisson with
# tsModel::harmonic(month, 2, 12) (written out below as cos/sin terms so that
# tsModel is not needed), model4 adding I(time - 36):smokban.
# The other models use derived columns that tests/analysis/its/test_segmented_regression.py builds
# the same way (phase2, trials, a synthetic control series).
#
# Run:  Rscript tests/analysis/its/reference/sicily_reference.R > tests/analysis/its/reference/sicily_reference.Rout
# Needs: R (Debian r-base-core), r-cran-sandwich.
suppressMessages(library(sandwich))

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
d <- read.csv(file.path(here, "..", "..", "..", "data", "its_sicily", "sicily.csv"))

harm <- function(x, nfreq, period) {
  t <- outer(2 * pi * x / period, 1:nfreq)
  m <- cbind(cos(t), sin(t))
  colnames(m) <- c(paste0("cos", 1:nfreq), paste0("sin", 1:nfreq))
  m
}
d <- cbind(d, harm(d$month, 2, 12))
d$rate <- d$aces / d$stdpop * 1e5
d$phase2 <- as.integer(d$time >= 49)
d$trials <- round(d$pop / 100)

z <- qnorm(0.975)
emit <- function(model, term, b, se, ratio) {
  lo <- b - z * se; hi <- b + z * se; p <- 2 * pnorm(-abs(b / se))
  if (ratio) { b <- exp(b); lo <- exp(lo); hi <- exp(hi) }
  cat(sprintf("%s %s %.15g %.15g %.15g %.15g\n", model, term, b, lo, hi, p))
}
emit_all <- function(name, m, V = vcov(m), ratio = TRUE) {
  b <- coef(m); se <- sqrt(diag(V))
  for (k in names(b)) emit(name, k, b[[k]], se[[k]], ratio)
}
cat("# model term estimate ci_low ci_high p  (ratio scale for log/logit links; Wald, normal quantile)\n")

m1 <- glm(aces ~ offset(log(stdpop)) + smokban + time, family = poisson, data = d)
emit_all("model1_poisson", m1)
cat(sprintf("model1_poisson pearson_dispersion %.15g\n", sum(residuals(m1, "pearson")^2) / m1$df.residual))

m2 <- glm(aces ~ offset(log(stdpop)) + smokban + time, family = quasipoisson, data = d)
emit_all("model2_quasipoisson", m2)
cat(sprintf("model2_quasipoisson dispersion %.15g\n", summary(m2)$dispersion))

m3 <- glm(aces ~ offset(log(stdpop)) + smokban + time + cos1 + cos2 + sin1 + sin2,
          family = quasipoisson, data = d)
emit_all("model3_seasonal", m3)
cat(sprintf("model3_seasonal dispersion %.15g\n", summary(m3)$dispersion))
r3 <- residuals(m3, type = "deviance")
cat(sprintf("model3_seasonal acf %s\n", paste(sprintf("%.15g", acf(r3, lag.max = 12, plot = FALSE)$acf[2:13]), collapse = " ")))
cat(sprintf("model3_seasonal pacf %s\n", paste(sprintf("%.15g", pacf(r3, lag.max = 12, plot = FALSE)$acf[1:12]), collapse = " ")))
lb <- Box.test(r3, lag = 12, type = "Ljung-Box")
cat(sprintf("model3_seasonal ljung_box %.15g %.15g\n", lb$statistic, lb$p.value))

m4 <- glm(aces ~ offset(log(stdpop)) + smokban + time + I(time - 36):smokban + cos1 + cos2 + sin1 + sin2,
          family = quasipoisson, data = d)
emit_all("model4_slope", m4)

emit_all("model1_neweywest3", m1, NeweyWest(m1, lag = 3, prewhite = FALSE, adjust = FALSE))
emit_all("model3_neweywest3", m3, NeweyWest(m3, lag = 3, prewhite = FALSE, adjust = FALSE))

g <- glm(rate ~ smokban + time, family = gaussian, data = d)
emit_all("gaussian", g, ratio = FALSE)
cat(sprintf("gaussian dispersion %.15g\n", summary(g)$dispersion))

a <- arima(d$rate, order = c(1, 0, 0), xreg = cbind(smokban = d$smokban, time = d$time), method = "ML")
emit_all("ar1", a, ratio = FALSE)
cat(sprintf("ar1 sigma2 %.15g\n", a$sigma2))
cat(sprintf("ar1 loglik %.15g\n", a$loglik))

ph <- glm(aces ~ offset(log(stdpop)) + smokban + phase2 + time + I(time - 36):smokban + I(time - 48):phase2,
          family = poisson, data = d)
emit_all("phases", ph)

b <- glm(cbind(aces, trials - aces) ~ smokban + time + cos1 + cos2 + sin1 + sin2, family = binomial, data = d)
emit_all("binomial", b)

# Comparative ITS: treated = Sicily; control = a synthetic series, stacked.
ctl <- d
ctl$aces <- round(d$aces * 0.8 + 30 * cos(2 * pi * d$time / 12))
d$treated <- 1; ctl$treated <- 0
s <- rbind(d, ctl)
ci <- glm(aces ~ offset(log(stdpop)) + time + treated + treated:time + smokban + I(time - 36):smokban +
            treated:smokban + treated:I(time - 36):smokban, family = quasipoisson, data = s)
emit_all("comparative", ci)
V <- vcov(ci); k <- c("time", "time:treated"); w <- c(1, 1)
emit("comparative", "treated_trend", sum(coef(ci)[k] * w), sqrt(drop(t(w) %*% V[k, k] %*% w)), TRUE)
cat(sprintf("# %s; sandwich %s\n", R.version.string, packageVersion("sandwich")))
