# Reference numbers from R (lme4 + lmerTest + emmeans) for tests/stats/test_against_r.py.
#
# Run once, from the repository root, after make_reference_inputs.py wrote the two designs:
#     apt-get install -y r-base-core r-cran-lme4 r-cran-lmertest r-cran-emmeans
#     Rscript tests/stats/make_reference.R
# For each design in tests/stats/reference/{balanced,unbalanced}.csv it writes
# r_<design>_{anova,variance,emmeans,tukey,table1_paired,table1_pooled}.csv there, in the
# columns advmri.stats writes. The tests compare against these files and do not need R.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
ref_dir <- file.path(dirname(normalizePath(script)), "reference")

responses <- c(ge = "log", sharpness = "log", ece = "log", mie = "log", ssim = "identity")
terms <- c("lr", "w_per", "w_adv", "lr:w_per", "lr:w_adv", "w_per:w_adv", "lr:w_per:w_adv")
# Tight optimiser so that R's numbers are as close to the REML optimum as it can get.
ctrl <- lmerControl(
  optimizer = "nloptwrap",
  optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-16, xtol_rel = 1e-14, ftol_rel = 1e-16,
                 maxeval = 1e5),
  calc.derivs = FALSE
)
emm_options(lmer.df = "satterthwaite", lmerTest.limit = 1e6)

num <- function(f) as.numeric(as.character(f))

model_data <- function(d, response) {
  y <- d[[response]]
  if (responses[[response]] == "log") y <- ifelse(is.finite(y) & y > 0, log(pmax(y, 1e-300)), NA)
  out <- data.frame(
    y = y,
    sample = factor(d$sample),
    lr = factor(d$lr, levels = sort(unique(d$lr))),
    w_per = factor(d$w_per, levels = sort(unique(d$w_per))),
    w_adv = factor(d$w_adv, levels = sort(unique(d$w_adv)))
  )
  out[is.finite(out$y), ]
}

fit <- function(md) lmer(y ~ lr * w_per * w_adv + (1 | sample), data = md, REML = TRUE,
                         control = ctrl)

tukey_family <- function(m, response, family, specs, by, factors) {
  emm <- emmeans(m, specs)
  grid <- as.data.frame(summary(emm))
  pr <- as.data.frame(summary(pairs(emm, adjust = "tukey")))
  key <- if (length(by)) do.call(paste, grid[by]) else rep("all", nrow(grid))
  rows <- list()
  for (g in unique(key)) {
    lv <- grid[key == g, , drop = FALSE]
    idx <- combn(nrow(lv), 2)
    for (col in 1:ncol(idx)) {
      a <- lv[idx[1, col], ]
      b <- lv[idx[2, col], ]
      row <- data.frame(response = response, family = family,
                        by_w_per = if ("w_per" %in% by) num(a$w_per) else NA,
                        by_lr = if ("lr" %in% by) num(a$lr) else NA,
                        a_lr = if ("lr" %in% factors) num(a$lr) else NA,
                        a_w_per = if ("w_per" %in% factors) num(a$w_per) else NA,
                        a_w_adv = if ("w_adv" %in% factors) num(a$w_adv) else NA,
                        b_lr = if ("lr" %in% factors) num(b$lr) else NA,
                        b_w_per = if ("w_per" %in% factors) num(b$w_per) else NA,
                        b_w_adv = if ("w_adv" %in% factors) num(b$w_adv) else NA)
      rows[[length(rows) + 1]] <- row
    }
  }
  out <- do.call(rbind, rows)
  stopifnot(nrow(out) == nrow(pr))
  out$estimate <- pr$estimate
  out$se <- pr$SE
  out$df <- pr$df
  out$t_ratio <- pr$t.ratio
  out$p_adj <- pr$p.value
  out
}

winners <- function(cells) {
  # cells: lr, w_per, w_adv, estimate (ln GE cell means); study §7 levels I and II.
  rows <- list()
  pick <- function(sub) sub[which.min(sub$estimate), ]
  for (p in sort(unique(cells$w_per))) {
    g <- cells[cells$w_per == p, ]
    v <- pick(g[g$w_adv == 0, ])
    a <- pick(g[g$w_adv > 0, ])
    rows[[length(rows) + 1]] <- data.frame(level = "I", w_per = p, lr = NA, vgg_lr = v$lr,
                                           vgg_w_adv = v$w_adv, gan_lr = a$lr,
                                           gan_w_adv = a$w_adv)
  }
  for (p in sort(unique(cells$w_per))) for (l in sort(unique(cells$lr))) {
    g <- cells[cells$w_per == p & cells$lr == l, ]
    v <- pick(g[g$w_adv == 0, ])
    a <- pick(g[g$w_adv > 0, ])
    rows[[length(rows) + 1]] <- data.frame(level = "II", w_per = p, lr = l, vgg_lr = v$lr,
                                           vgg_w_adv = v$w_adv, gan_lr = a$lr,
                                           gan_w_adv = a$w_adv)
  }
  do.call(rbind, rows)
}

for (design in c("balanced", "unbalanced")) {
  d <- read.csv(file.path(ref_dir, paste0(design, ".csv")))
  anova_rows <- list(); var_rows <- list(); emm_rows <- list(); tukey_rows <- list()
  models <- list(); cell_emms <- list()
  for (response in names(responses)) {
    md <- model_data(d, response)
    m <- fit(md)
    models[[response]] <- m
    a <- anova(m, type = 3, ddf = "Satterthwaite")
    anova_rows[[response]] <- data.frame(response = response, term = rownames(a),
                                         num_df = a$NumDF, den_df = a$DenDF,
                                         F = a[["F value"]], p = a[["Pr(>F)"]])
    vc <- as.data.frame(VarCorr(m))
    var_rows[[response]] <- data.frame(response = response,
                                       sample_var = vc$vcov[vc$grp == "sample"],
                                       residual_var = vc$vcov[vc$grp == "Residual"])
    emm <- emmeans(m, ~ lr + w_per + w_adv)
    s <- as.data.frame(summary(emm))
    cell_emms[[response]] <- list(emm = emm, grid = s)
    emm_rows[[response]] <- data.frame(response = response, lr = num(s$lr),
                                       w_per = num(s$w_per), w_adv = num(s$w_adv),
                                       estimate = s$emmean, se = s$SE, df = s$df,
                                       ci_low = s$lower.CL, ci_high = s$upper.CL)
    fams <- list(
      list("w_adv|w_per,lr", ~ w_adv | w_per + lr, c("w_per", "lr"), c("w_adv")),
      list("lr:w_adv|w_per", ~ lr + w_adv | w_per, c("w_per"), c("lr", "w_adv")),
      list("w_adv", ~ w_adv, character(0), c("w_adv")),
      list("w_per", ~ w_per, character(0), c("w_per")),
      list("lr", ~ lr, character(0), c("lr"))
    )
    for (f in fams) {
      tukey_rows[[length(tukey_rows) + 1]] <- suppressMessages(
        tukey_family(m, response, f[[1]], f[[2]], f[[3]], f[[4]]))
    }
  }
  ge <- emm_rows[["ge"]]
  win <- winners(ge)
  paired <- win; pooled <- win
  for (response in names(responses)) {
    md <- model_data(d, response)
    grid <- cell_emms[[response]]$grid
    for (i in seq_len(nrow(win))) {
      w <- win[i, ]
      is_v <- num(md$lr) == w$vgg_lr & num(md$w_per) == w$w_per & num(md$w_adv) == w$vgg_w_adv
      is_g <- num(md$lr) == w$gan_lr & num(md$w_per) == w$w_per & num(md$w_adv) == w$gan_w_adv
      sub <- md[is_v | is_g, ]
      sub$net <- factor(ifelse(is_v[is_v | is_g], "vgg", "gan"), levels = c("vgg", "gan"))
      m2 <- lmer(y ~ net + (1 | sample), data = sub, REML = TRUE, control = ctrl)
      a2 <- anova(m2, type = 3, ddf = "Satterthwaite")
      paired[i, paste0(response, "_F")] <- a2[["F value"]][1]
      paired[i, paste0(response, "_p")] <- a2[["Pr(>F)"]][1]
      vec <- (num(grid$lr) == w$gan_lr & num(grid$w_per) == w$w_per &
                num(grid$w_adv) == w$gan_w_adv) -
        (num(grid$lr) == w$vgg_lr & num(grid$w_per) == w$w_per &
           num(grid$w_adv) == w$vgg_w_adv)
      ct <- as.data.frame(summary(contrast(cell_emms[[response]]$emm, list(c = as.numeric(vec)))))
      pooled[i, paste0(response, "_F")] <- ct$t.ratio^2
      pooled[i, paste0(response, "_p")] <- ct$p.value
    }
  }
  out <- function(x, name) {
    write.csv(x, file.path(ref_dir, paste0("r_", design, "_", name, ".csv")), row.names = FALSE,
              na = "")
  }
  out(do.call(rbind, anova_rows), "anova")
  out(do.call(rbind, var_rows), "variance")
  out(do.call(rbind, emm_rows), "emmeans")
  out(do.call(rbind, tukey_rows), "tukey")
  out(paired, "table1_paired")
  out(pooled, "table1_pooled")
  cat(design, "done\n")
}
cat(R.version.string, "lme4", as.character(packageVersion("lme4")), "lmerTest",
    as.character(packageVersion("lmerTest")), "emmeans", as.character(packageVersion("emmeans")),
    "\n")
