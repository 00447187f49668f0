import type { Status } from 'presently-client/socket';

// The dashboard's two charts, drawn as SVG by hand: a chart library would weigh more than the
// whole dashboard, be one more dependency to keep up, and many inject inline styles, which the
// page's Content-Security-Policy (style-src 'self') refuses. Colours come from style.css,
// through classes.

const SVG = 'http://www.w3.org/2000/svg';

export interface OnlineHour {
  /** ISO 8601, the hour's start. */
  hour: string;
  online: number;
  peak: number;
}

export interface StatusInterval {
  status: Status;
  started: string;
  ended: string | null;
}

function svgElement<K extends keyof SVGElementTagNameMap>(
  name: K,
  attributes: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** A tooltip, as browsers show an SVG element's <title>. */
function titled<E extends SVGElement>(element: E, title: string): E {
  element.append(svgElement('title', {}, title));
  return element;
}

const compact = new Intl.NumberFormat('en', { notation: 'compact' });

const hourLabel = (time: Date) =>
  time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });

/** The smallest of 1, 2, 5 × 10^n at or above `value` (at least 1): a round top for an axis. */
function roundUp(value: number): number {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

const WIDTH = 720;
const LEFT = 48;
const RIGHT = 8;

/** Online users per hour as bars, with the peak at one moment as a tick on each. */
export function onlineChart(hours: OnlineHour[]): SVGSVGElement {
  const height = 170;
  const top = 10;
  const bottom = 24;
  const plotHeight = height - top - bottom;
  const plotWidth = WIDTH - LEFT - RIGHT;
  const svg = svgElement('svg', {
    viewBox: `0 0 ${WIDTH} ${height}`,
    class: 'chart online-chart',
    role: 'img',
    'aria-label': `Online users per hour, ${hours.length} hours`,
  });
  const max = roundUp(Math.max(0, ...hours.map((hour) => hour.online)));
  const y = (value: number) => top + plotHeight - (value / max) * plotHeight;
  for (const value of [0, max / 2, max]) {
    svg.append(
      svgElement('line', {
        x1: LEFT,
        x2: WIDTH - RIGHT,
        y1: y(value),
        y2: y(value),
        class: 'grid',
      }),
      svgElement(
        'text',
        { x: LEFT - 6, y: y(value) + 4, class: 'axis end' },
        compact.format(value),
      ),
    );
  }
  const slot = plotWidth / Math.max(1, hours.length);
  hours.forEach((hour, index) => {
    const x = LEFT + index * slot;
    const time = new Date(hour.hour);
    const label = `${hourLabel(time)}: ${hour.online} online, at most ${hour.peak} at once`;
    const bar = svgElement('rect', {
      x: x + slot * 0.1,
      y: y(hour.online),
      width: Math.max(1, slot * 0.8),
      height: Math.max(0, top + plotHeight - y(hour.online)),
      class: 'bar',
      'data-hour': hour.hour,
      'data-online': hour.online,
    });
    svg.append(titled(bar, label));
    svg.append(
      svgElement('line', {
        x1: x + slot * 0.1,
        x2: x + slot * 0.9,
        y1: y(hour.peak),
        y2: y(hour.peak),
        class: 'peak',
      }),
    );
    // A label every few hours, so that they never overlap.
    const every = Math.ceil(hours.length / 8);
    if (index % every === 0) {
      svg.append(
        svgElement(
          'text',
          { x: x + slot / 2, y: height - 6, class: 'axis middle' },
          hourLabel(time),
        ),
      );
    }
  });
  return svg;
}

/** One user's statuses over [from, to) as a band of coloured spans, with hour marks. */
export function timelineChart(intervals: StatusInterval[], from: Date, to: Date): SVGSVGElement {
  const height = 64;
  const band = { top: 6, height: 30 };
  const plotWidth = WIDTH - LEFT - RIGHT;
  const span = to.getTime() - from.getTime();
  const x = (time: number) =>
    LEFT +
    ((Math.min(Math.max(time, from.getTime()), to.getTime()) - from.getTime()) / span) * plotWidth;
  const svg = svgElement('svg', {
    viewBox: `0 0 ${WIDTH} ${height}`,
    class: 'chart timeline',
    role: 'img',
    'aria-label': `Statuses from ${from.toLocaleString()} to ${to.toLocaleString()}`,
  });
  svg.append(
    svgElement('rect', {
      x: LEFT,
      y: band.top,
      width: plotWidth,
      height: band.height,
      class: 'unknown',
    }),
  );
  for (const interval of intervals) {
    const start = new Date(interval.started).getTime();
    const end = interval.ended === null ? to.getTime() : new Date(interval.ended).getTime();
    const left = x(start);
    const width = x(end) - left;
    if (width <= 0) continue;
    const until = interval.ended === null ? 'now' : hourLabel(new Date(end));
    const segment = svgElement('rect', {
      x: left,
      y: band.top,
      width: Math.max(0.5, width),
      height: band.height,
      class: `segment fill-${interval.status}`,
      'data-status': interval.status,
    });
    svg.append(titled(segment, `${interval.status}, ${hourLabel(new Date(start))} to ${until}`));
  }
  // Hour marks every three hours, at whole hours of this browser's clock.
  const mark = new Date(from);
  mark.setMinutes(0, 0, 0);
  while (mark.getTime() < from.getTime() || mark.getHours() % 3 !== 0) {
    mark.setHours(mark.getHours() + 1);
  }
  for (; mark < to; mark.setHours(mark.getHours() + 3)) {
    const at = x(mark.getTime());
    svg.append(
      svgElement('line', {
        x1: at,
        x2: at,
        y1: band.top + band.height,
        y2: band.top + band.height + 4,
        class: 'tick',
      }),
      svgElement('text', { x: at, y: height - 8, class: 'axis middle' }, hourLabel(mark)),
    );
  }
  return svg;
}
