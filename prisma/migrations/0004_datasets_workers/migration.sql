-- Datasets and workers (issue 16): labelled test sets imported as .npz (bytes in
-- <dataDir>/datasets/<sha256>.npz), their certification runs over a model with one row per image
-- (each image is an ordinary Run with its own cache entry), and the worker that computed each result.

CREATE TABLE "Dataset" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "count" INTEGER NOT NULL,
    "itemShape" TEXT NOT NULL,
    "pixels" TEXT NOT NULL,
    "mean" TEXT,
    "std" TEXT,
    "normalisation" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "Dataset_sha256_normalisation_key" ON "Dataset"("sha256", "normalisation");

CREATE TABLE "DatasetRun" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "seq" INTEGER NOT NULL,
    "datasetId" TEXT NOT NULL,
    "modelId" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "total" INTEGER NOT NULL,
    "request" TEXT NOT NULL,
    "summary" TEXT,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" DATETIME,
    "finishedAt" DATETIME,
    CONSTRAINT "DatasetRun_datasetId_fkey" FOREIGN KEY ("datasetId") REFERENCES "Dataset" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "DatasetRun_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "DatasetRun_seq_key" ON "DatasetRun"("seq");
CREATE INDEX "DatasetRun_status_idx" ON "DatasetRun"("status");

CREATE TABLE "DatasetImage" (
    "datasetRunId" TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    "label" INTEGER NOT NULL,
    "status" TEXT NOT NULL,
    "inputId" TEXT,
    "runId" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "predictedClass" INTEGER,
    "margin" REAL,
    "radius" REAL,
    "quality" TEXT,
    "failureProbability" REAL,
    "local" TEXT,
    "seconds" REAL,
    "worker" TEXT,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    PRIMARY KEY ("datasetRunId", "index"),
    CONSTRAINT "DatasetImage_datasetRunId_fkey" FOREIGN KEY ("datasetRunId") REFERENCES "DatasetRun" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "DatasetImage_runId_idx" ON "DatasetImage"("runId");

-- The process that computed a run's result: a `lipcert worker`'s name, or 'server' (in-process).
ALTER TABLE "Run" ADD COLUMN "worker" TEXT;
ALTER TABLE "Result" ADD COLUMN "worker" TEXT;
-- Inputs created for the images of a dataset run are not listed among the model's inputs.
ALTER TABLE "Input" ADD COLUMN "datasetId" TEXT;
