-- What a run computes and how its numbers are certified (startRun's method, certificate, delta and
-- seed). Runs from before these were choices computed the paper's method with Lanczos estimates.
ALTER TABLE "Run" ADD COLUMN "method" TEXT NOT NULL DEFAULT 'paper';
ALTER TABLE "Run" ADD COLUMN "certificate" TEXT NOT NULL DEFAULT 'estimate';
ALTER TABLE "Run" ADD COLUMN "delta" REAL;
ALTER TABLE "Run" ADD COLUMN "seed" INTEGER;
-- How a model's background global bound was obtained; null for bounds from before (the paper's
-- method with Lanczos estimates).
ALTER TABLE "Model" ADD COLUMN "globalMethod" TEXT;
ALTER TABLE "Model" ADD COLUMN "globalCertificate" TEXT;
