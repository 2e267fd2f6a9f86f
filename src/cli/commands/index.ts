import type { Command } from "../main.js";
import { train } from "./train.js";
import { evalCmd } from "./eval.js";
import { mergeCmd } from "./merge.js";
import { generateCmd } from "./generate.js";
import { inspect } from "./inspect.js";
import { analyzeCmd } from "./analyze.js";
import { compareCmd } from "./compare.js";

export const COMMANDS: Command[] = [train, evalCmd, mergeCmd, generateCmd, inspect, analyzeCmd, compareCmd];
