import type { Command } from "../main.js";
import { inspect } from "./inspect.js";

export const COMMANDS: Command[] = [inspect];
