/**
 * A time budget for work that may stop early without losing what it found (the tight method's
 * refinement stage): `checkBudget` throws BudgetExhausted once the deadline has passed, and the
 * caller keeps its best certified result so far.
 */
export class BudgetExhausted extends Error {
  constructor() {
    super('the time budget is spent');
    this.name = 'BudgetExhausted';
  }
}

/** Throws BudgetExhausted when `deadline` (a performance.now() time, ms) has passed. */
export function checkBudget(deadline: number | undefined): void {
  if (deadline !== undefined && performance.now() > deadline) throw new BudgetExhausted();
}
