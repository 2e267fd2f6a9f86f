/** Child-process entry of runArmInChild: runs one arm from argv[2] (JSON ArmOptions), sends back the result with peak RSS. */
import { runArm, type ArmOptions } from "./experiment.js";

const opts = JSON.parse(process.argv[2]!) as ArmOptions;
const result = await runArm(opts);
// maxRSS is in kilobytes
process.send!({ ...result, peakRssBytes: process.resourceUsage().maxRSS * 1024 }, () => process.exit(0));
