import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { errorPage, isNavigation, prefersHtml, wantsErrorPage } from './error-page.js';

const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('isNavigation', () => {
  it.each([
    [{ 'sec-fetch-mode': 'navigate', accept: '*/*' }, true],
    // A page's own fetch says so, whatever it accepts.
    [{ 'sec-fetch-mode': 'cors', accept: 'text/html' }, false],
    [{ 'sec-fetch-mode': 'same-origin' }, false],
    [{ 'sec-fetch-mode': 'websocket' }, false],
    // Without Sec-Fetch-Mode (an older browser, a crawler), the Accept decides.
    [{ accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }, true],
    [{ accept: '*/*' }, false],
    [{}, false],
  ])('%j -> %s', (headers, expected) => {
    expect(isNavigation(request(headers))).toBe(expected);
  });
});

describe('prefersHtml', () => {
  it.each([
    ['text/html', true],
    ['TEXT/HTML; charset=utf-8', true],
    ['application/json', false],
    ['application/json, text/html', false],
    ['text/html;q=0.5, application/json', false],
    ['text/html, application/json;q=0.9', true],
    ['text/html;q=0', false],
    ['text/html;q=x', false],
    ['*/*', false],
    ['text/*', false],
  ])('%s -> %s', (accept, expected) => {
    expect(prefersHtml(accept)).toBe(expected);
  });
});

describe('wantsErrorPage', () => {
  const navigation = request({ 'sec-fetch-mode': 'navigate' });
  it("only for the 404, 500 and 502 of a navigation, and a private preview's 401 and 403", () => {
    expect(
      [400, 401, 403, 404, 413, 429, 500, 502, 504].filter((status) => wantsErrorPage(navigation, status)),
    ).toEqual([404, 500, 502]);
    expect(wantsErrorPage(navigation, 401, 'PREVIEW_TOKEN_REQUIRED')).toBe(true);
    expect(wantsErrorPage(navigation, 403, 'PREVIEW_TOKEN_INVALID')).toBe(true);
    expect(wantsErrorPage(navigation, 403, 'FORBIDDEN')).toBe(false);
    expect(wantsErrorPage(request({ accept: '*/*' }), 502)).toBe(false);
    expect(wantsErrorPage(undefined, 502)).toBe(false);
  });
});

describe('errorPage', () => {
  const body = (status: number, error: string, message: string, code: string) =>
    ({ statusCode: status, error, message, code }) as Parameters<typeof errorPage>[1];

  it('says the app is starting and reloads itself for the 502', () => {
    const page = errorPage(
      502,
      body(502, 'Bad Gateway', 'Failed to connect to preview server', 'UPSTREAM_CONNECT_FAILED'),
      'req-1',
    );
    expect(page).toContain('<title>The app is starting</title>');
    expect(page).toContain('Failed to connect to preview server');
    expect(page).toContain('UPSTREAM_CONNECT_FAILED');
    expect(page).toContain('req-1');
    expect(page).toContain('location.reload()');
  });

  it('gives the status and message of a 404 or 500, escaped, and does not reload', () => {
    const page = errorPage(
      500,
      body(
        500,
        'Internal Server Error',
        'Failed to validate container for session a: <b>"x"</b> & y',
        'CONTAINER_LOOKUP_FAILED',
      ),
      undefined,
    );
    expect(page).toContain('<title>500 Internal Server Error</title>');
    expect(page).toContain(
      'Failed to validate container for session a: &lt;b&gt;&quot;x&quot;&lt;/b&gt; &amp; y',
    );
    expect(page).not.toContain('<b>');
    expect(page).not.toContain('location.reload()');
    expect(page).not.toContain('Request id');
  });
});
