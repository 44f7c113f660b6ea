import type { GradRule } from './types.js';
export const convRules: GradRule[] = [];
