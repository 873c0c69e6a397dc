/**
 * The panel's controls, behind a thin layer of our own over @vscode-elements/elements so the
 * component library can be swapped without touching the app. Labels are always set as text.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

export interface Button {
  readonly element: HTMLElement;
  setLabel(text: string): void;
  setDisabled(disabled: boolean): void;
}

export function button(label: string, onClick: () => void, opts: { secondary?: boolean; testId?: string; title?: string } = {}): Button {
  const b = document.createElement('vscode-button') as HTMLElement & { disabled: boolean; secondary: boolean };
  b.textContent = label;
  if (opts.secondary) b.setAttribute('secondary', '');
  if (opts.testId) b.dataset['testid'] = opts.testId;
  if (opts.title) b.title = opts.title;
  b.addEventListener('click', () => {
    if (!b.disabled) onClick();
  });
  return {
    element: b,
    setLabel: (t) => (b.textContent = t),
    setDisabled: (d) => {
      b.disabled = d;
      b.toggleAttribute('disabled', d);
    },
  };
}

export function checkbox(label: string, checked: boolean, onChange: (checked: boolean) => void, testId?: string): { element: HTMLElement; set(checked: boolean): void } {
  const c = document.createElement('vscode-checkbox') as HTMLElement & { checked: boolean; label: string };
  c.label = label;
  c.checked = checked;
  if (testId) c.dataset['testid'] = testId;
  c.addEventListener('change', () => onChange(c.checked));
  return { element: c, set: (v) => (c.checked = v) };
}

export function select<T extends string>(options: readonly { value: T; label: string }[], value: T, onChange: (value: T) => void, ariaLabel: string): HTMLElement {
  const s = document.createElement('vscode-single-select') as HTMLElement & { value: string };
  s.setAttribute('aria-label', ariaLabel);
  for (const o of options) {
    const opt = document.createElement('vscode-option') as HTMLElement & { value: string };
    opt.setAttribute('value', o.value);
    opt.textContent = o.label;
    if (o.value === value) opt.setAttribute('selected', '');
    s.appendChild(opt);
  }
  s.addEventListener('change', () => onChange(s.value as T));
  return s;
}

/** A labelled range input (vscode-elements has no slider), themed via CSS. */
export function slider(label: string, opts: { min: number; max: number; step: number; value: number; format: (v: number) => string; testId: string }, onInput: (v: number) => void, onCommit: (v: number) => void) {
  const wrap = el('label', { class: 'slider' });
  const caption = el('span', { class: 'slider-label' }, label);
  const input = el('input', { type: 'range', min: String(opts.min), max: String(opts.max), step: String(opts.step), 'data-testid': opts.testId, 'aria-label': label });
  input.value = String(opts.value);
  const out = el('output', {}, opts.format(opts.value));
  input.addEventListener('input', () => {
    out.textContent = opts.format(Number(input.value));
    onInput(Number(input.value));
  });
  input.addEventListener('change', () => onCommit(Number(input.value)));
  wrap.append(caption, input, out);
  return {
    element: wrap,
    set(value: number, max?: number) {
      if (max !== undefined) input.max = String(max);
      input.value = String(value);
      out.textContent = opts.format(value);
    },
  };
}

export function progressRing(): HTMLElement {
  const r = document.createElement('vscode-progress-ring');
  r.setAttribute('aria-label', 'Working');
  return r;
}

export function badge(text: string): HTMLElement {
  const b = document.createElement('vscode-badge');
  b.textContent = text;
  return b;
}
