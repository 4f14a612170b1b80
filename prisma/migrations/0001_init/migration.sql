-- lipcert store, first version: models, inputs, runs, result cache (matches prisma/schema.prisma).

CREATE TABLE "Model" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "inputShape" TEXT NOT NULL,
    "outputShape" TEXT NOT NULL,
    "parameterCount" INTEGER NOT NULL,
    "layers" TEXT NOT NULL,
    "globalStatus" TEXT NOT NULL,
    "globalBound" REAL,
    "globalQuality" TEXT,
    "globalResult" TEXT,
    "globalError" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "Model_sha256_key" ON "Model"("sha256");

CREATE TABLE "Input" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "modelId" TEXT NOT NULL,
    "name" TEXT,
    "sha256" TEXT NOT NULL,
    "shape" TEXT NOT NULL,
    "data" BLOB NOT NULL,
    "predictedClass" INTEGER NOT NULL,
    "margin" REAL NOT NULL,
    "logits" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Input_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "Input_modelId_sha256_key" ON "Input"("modelId", "sha256");

CREATE TABLE "Run" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "seq" INTEGER NOT NULL,
    "modelId" TEXT NOT NULL,
    "inputId" TEXT NOT NULL,
    "cacheKey" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "progress" REAL NOT NULL DEFAULT 0,
    "message" TEXT NOT NULL DEFAULT '',
    "cached" BOOLEAN NOT NULL DEFAULT false,
    "eps" TEXT NOT NULL,
    "radius" BOOLEAN NOT NULL,
    "tolerance" REAL,
    "requestedBackend" TEXT NOT NULL,
    "backend" TEXT,
    "adapter" TEXT,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" DATETIME,
    "finishedAt" DATETIME,
    CONSTRAINT "Run_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Run_inputId_fkey" FOREIGN KEY ("inputId") REFERENCES "Input" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "Run_seq_key" ON "Run"("seq");
CREATE INDEX "Run_modelId_seq_idx" ON "Run"("modelId", "seq");
CREATE INDEX "Run_status_idx" ON "Run"("status");
CREATE INDEX "Run_cacheKey_idx" ON "Run"("cacheKey");

CREATE TABLE "Result" (
    "cacheKey" TEXT NOT NULL PRIMARY KEY,
    "modelSha256" TEXT NOT NULL,
    "inputSha256" TEXT NOT NULL,
    "engineVersion" TEXT NOT NULL,
    "result" TEXT NOT NULL,
    "computeSeconds" REAL NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX "Result_modelSha256_idx" ON "Result"("modelSha256");
