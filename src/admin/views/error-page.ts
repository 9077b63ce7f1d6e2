/**
 * The page of a refused or failed request: its status and a message (escaped like everything
 * else), never a stack trace or a cause.
 *
 * @module
 */
import { html, type SafeHtml } from '../html.js';

const TITLES: Record<number, string> = {
  400: 'Bad request',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  413: 'Request too large',
  415: 'Unsupported form encoding',
  422: 'Invalid input',
  500: 'Something went wrong',
};

/** The title of a status' page. */
export function errorTitle(status: number): string {
  return TITLES[status] ?? 'Error';
}

export function errorPage(status: number, message: string): SafeHtml {
  return html`<h1>${errorTitle(status)}</h1>
<p>${message}</p>`;
}
