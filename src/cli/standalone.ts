/**
 * A runnable program with only the `lower`, `attack` and `table` commands, until src/cli.ts
 * registers them (`npm run table`, or `npx tsx src/cli/standalone.ts lower MODEL --input FILE ...`).
 */
import { Command } from 'commander';
import { registerAttackCommand } from './attack.js';
import { registerLowerCommand } from './lower.js';
import { registerTableCommand } from './table.js';
import { registerAuditCommand } from './audit.js';

const program = new Command('lipcert').description('lower bounds, attacks and the paper\'s Table III (Avant & Morgansen, TNNLS 2023)');
registerLowerCommand(program);
registerAttackCommand(program);
registerTableCommand(program);
registerAuditCommand(program);
await program.parseAsync(process.argv);
