/** Small building blocks shared by the pages: badges, errors, progress, the file drop zone. */
import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import type { ApiError } from '../api';
import { CERTIFICATE_LABEL, METHOD_LABEL, QUALITY_LABEL, QUALITY_TITLE, STATUS_LABEL, num, percent } from '../format';
import type { Certificate, Method, Quality, RunStatus } from '../queries';
import { onLinkClick } from '../router';

export function Link(props: { href: string; class?: string; children: ComponentChildren; title?: string }) {
  return (
    <a href={props.href} class={props.class} title={props.title} onClick={onLinkClick}>
      {props.children}
    </a>
  );
}

export function Card(props: { title?: ComponentChildren; step?: number; actions?: ComponentChildren; children: ComponentChildren; class?: string; id?: string }) {
  return (
    <section class={`card ${props.class ?? ''}`} id={props.id}>
      {props.title && (
        <header class="card-head">
          <h2>
            {props.step !== undefined && <span class="step">{props.step}</span>}
            {props.title}
          </h2>
          {props.actions && <div class="card-actions">{props.actions}</div>}
        </header>
      )}
      <div class="card-body">{props.children}</div>
    </section>
  );
}

/** What a number is: exact, a guaranteed upper bound (with its failure probability, if any) or an estimate. */
export function QualityBadge({ quality, failureProbability }: { quality: Quality | null | undefined; failureProbability?: number | null }) {
  if (!quality) return null;
  const p = quality === 'UPPER' && failureProbability ? ` (p ≤ ${num(failureProbability, 2)})` : '';
  const title = QUALITY_TITLE[quality] + (p ? `, failing with probability at most ${num(failureProbability, 3)}` : '');
  return (
    <span class={`badge quality quality-${quality.toLowerCase()}`} title={title} data-quality={quality}>
      {QUALITY_LABEL[quality]}
      {p}
    </span>
  );
}

/** How a number was obtained: the method and which spectral norms entered it. */
export function MethodBadge({ method, certificate }: { method: Method | null | undefined; certificate?: Certificate | null }) {
  if (!method) return null;
  return (
    <span class={`badge method method-${method.toLowerCase()}`} data-method={method} data-certificate={certificate ?? undefined}>
      {METHOD_LABEL[method]}
      {certificate ? ` · ${CERTIFICATE_LABEL[certificate]}` : ''}
    </span>
  );
}

/** A label for numbers that are not a BoundQuality (lower bounds, attacks, radii). */
export function KindBadge({ kind, title }: { kind: 'lower' | 'attack' | 'certified'; title: string }) {
  const label = { lower: 'lower bound (search)', attack: 'upper bound (attack)', certified: 'certified' }[kind];
  return (
    <span class={`badge quality kind-${kind}`} title={title}>
      {label}
    </span>
  );
}

export function StatusBadge({ status }: { status: RunStatus }) {
  return <span class={`badge status status-${status.toLowerCase()}`}>{STATUS_LABEL[status]}</span>;
}

export function CachedBadge() {
  return (
    <span class="badge cached" title="The result came from the cache: the same model, input, eps and method were computed before">
      from cache
    </span>
  );
}

export function FieldError({ error, id }: { error: ApiError | null | undefined; id?: string }) {
  if (!error) return null;
  return (
    <p class="field-error" role="alert" id={id} data-code={error.code}>
      <span class="code">{error.code}</span> {error.message}
    </p>
  );
}

export function ProgressBar({ fraction, status, label }: { fraction: number; status: RunStatus; label?: string }) {
  const value = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  return (
    <div class="progress-wrap">
      <div
        class={`progress status-${status.toLowerCase()}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={value}
        aria-label={label ?? 'run progress'}
        data-progress={value}
      >
        <div class="progress-fill" style={{ width: `${value}%` }} />
      </div>
      <span class="progress-value">{percent(fraction)}</span>
    </div>
  );
}

export function Spinner() {
  return <span class="spinner" aria-hidden="true" />;
}

/** A drop zone that is also a file picker. */
export function Dropzone(props: {
  accept: string;
  label: ComponentChildren;
  hint?: ComponentChildren;
  busy?: boolean;
  testId?: string;
  onFile(file: File): void;
}) {
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  return (
    <label
      class={`dropzone ${over ? 'over' : ''} ${props.busy ? 'busy' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const file = e.dataTransfer?.files[0];
        if (file) props.onFile(file);
      }}
    >
      <input
        ref={input}
        type="file"
        accept={props.accept}
        data-testid={props.testId}
        disabled={props.busy}
        onChange={(e) => {
          const file = (e.currentTarget as HTMLInputElement).files?.[0];
          if (file) props.onFile(file);
          if (input.current) input.current.value = '';
        }}
      />
      <span class="dropzone-label">{props.busy ? <Spinner /> : <UploadIcon />} {props.label}</span>
      {props.hint && <span class="dropzone-hint">{props.hint}</span>}
    </label>
  );
}

function UploadIcon() {
  return (
    <svg class="icon" viewBox="0 0 20 20" width="18" height="18" aria-hidden="true">
      <path d="M10 13V3m0 0L6 7m4-4 4 4M3 13v3a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** A definition list of label → value rows. */
export function Facts({ rows }: { rows: [ComponentChildren, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {rows.map(([k, v], i) => (
        <div key={i}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}
