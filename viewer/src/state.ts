/** The viewer's state: what is selected, shared by the views; views subscribe to changes. */
import type { Job, Study } from "./api.js";

export interface State {
  studies: Study[];
  study?: Study;
  seriesId?: string;
  job?: Job;
}

type Listener = (s: State) => void;
const listeners: Listener[] = [];
export const state: State = { studies: [] };

export function update(patch: Partial<State>): void {
  Object.assign(state, patch);
  for (const l of listeners) l(state);
}

export function subscribe(l: Listener): void {
  listeners.push(l);
}

/** Shows an API or page error in the page (never only in the console). */
export function showError(e: unknown): void {
  const box = document.getElementById("error")!;
  box.textContent = e instanceof Error ? e.message : String(e);
  box.hidden = false;
}

export function clearError(): void {
  document.getElementById("error")!.hidden = true;
}
