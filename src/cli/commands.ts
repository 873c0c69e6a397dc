/** Commands over the circuit and pruning tooling (registered into the CLI's table). */
import type { Command } from './main';

export const extraCommands: Record<string, Command> = {};
