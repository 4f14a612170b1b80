-- Runs may also search for lower bounds on L(x0, eps) and run attacks (issue 5): their options, as
-- JSON, or NULL for runs that do not (every run before this migration).

ALTER TABLE "Run" ADD COLUMN "lowerBounds" TEXT;
ALTER TABLE "Run" ADD COLUMN "attacks" TEXT;
