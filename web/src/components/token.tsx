/**
 * The API token of a server started with LIPCERT_TOKEN: asked for when the server refuses the page
 * (UNAUTHENTICATED), or from the header's "API token" button; kept in this browser (api.ts) and
 * used from then on. Saving reloads the page so that every view asks again with the token.
 */
import { useEffect, useState } from 'preact/hooks';
import { apiToken, onTokenNeeded, setApiToken, type ApiError } from '../api';

/** The header's button that opens the panel. */
export function TokenButton({ onClick }: { onClick: () => void }) {
  return (
    <button type="button" class="token-button" data-testid="token-open" onClick={onClick} title="The API token this server was started with (LIPCERT_TOKEN)">
      API token{apiToken() !== null ? ' ✓' : ''}
    </button>
  );
}

/** Shown when the server refused the page for want of its token, or when `open`. */
export function TokenPanel({ open }: { open: boolean }) {
  const [refusal, setRefusal] = useState<ApiError | null>(null);
  const [value, setValue] = useState('');
  useEffect(() => onTokenNeeded((error) => setRefusal(error)), []);

  const stored = apiToken() !== null;
  const save = (event: Event) => {
    event.preventDefault();
    setApiToken(value.trim() || null);
    location.reload();
  };
  const forget = () => {
    setApiToken(null);
    location.reload();
  };

  if (!refusal && !open) return null;
  return (
    <div class="container token-panel" role={refusal ? 'alert' : undefined}>
      <form class={`callout ${refusal ? 'error' : 'warn'}`} data-testid="token-panel" data-refused={refusal ? refusal.code : undefined} onSubmit={save}>
        <strong>{refusal ? (stored ? 'The server refused the API token this browser has.' : 'This lipcert server needs its API token.') : 'API token'}</strong>
        <span>Enter the LIPCERT_TOKEN the server was started with; it is kept in this browser and sent with every request.</span>
        <input type="password" autocomplete="off" aria-label="API token" data-testid="token-input" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        <button type="submit" data-testid="token-save" disabled={!value.trim()}>
          Use this token
        </button>
        {stored && (
          <button type="button" data-testid="token-forget" onClick={forget}>
            Forget the token
          </button>
        )}
      </form>
    </div>
  );
}
