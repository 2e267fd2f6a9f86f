/**
 * Learning-rate schedules as HF transformers defines them (get_*_schedule_with_warmup), as a multiplier of the
 * base rate at optimizer step `step` (0-based: the rate used for the step-th update). Warmup is linear from 0.
 * "constant" honours warmup too (HF's constant_with_warmup), since a warmup flag that is silently ignored surprises.
 */
export type SchedulerType = "constant" | "linear" | "cosine";
export const SCHEDULER_TYPES: readonly SchedulerType[] = ["constant", "linear", "cosine"];

export function lrMultiplier(type: SchedulerType, step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (type === "constant") return 1;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (type === "linear") return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
