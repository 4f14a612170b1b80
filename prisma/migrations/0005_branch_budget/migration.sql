-- The certified radius' refinement stage (startRun's branchBudget, seconds; tight method only).
-- Null: no stage, as every run before it.
ALTER TABLE "Run" ADD COLUMN "branchBudget" REAL;
