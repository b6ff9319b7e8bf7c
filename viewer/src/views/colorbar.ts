/**
 * The colour bar of a colour-mapped viewport: the difference map (reconstruction − truth, signed:
 * red where the reconstruction is brighter than the ground truth, blue where it is darker) or an
 * uncertainty map (posterior standard deviation). Its ticks follow the viewport's window: top
 * centre + width/2, middle the centre, bottom centre − width/2, in the series' units.
 */
import * as cornerstone from "cornerstone-core";

export interface ColourScale {
  colormap: string;
  caption: string;
  /** Ticks with an explicit sign (+0.1 / 0 / -0.1). */
  signed: boolean;
}

export const DIFFERENCE: ColourScale = {
  colormap: "coolwarm",
  caption: "reconstruction − truth",
  signed: true,
};
export const UNCERTAINTY: ColourScale = { colormap: "hotIron", caption: "posterior std", signed: false };

export function colourBar(): HTMLElement {
  const bar = document.createElement("div");
  bar.className = "colorbar";
  bar.hidden = true;
  bar.innerHTML =
    `<canvas width="1" height="256"></canvas>` +
    `<span class="tick"></span><span class="tick"></span><span class="tick"></span>` +
    `<span class="caption"></span>`;
  return bar;
}

function paint(canvas: HTMLCanvasElement, colormap: string): void {
  if (canvas.dataset.colormap === colormap) return;
  const map = cornerstone.colors.getColormap(colormap);
  const n = map.getNumberOfColors();
  const ctx = canvas.getContext("2d")!;
  const img = ctx.createImageData(1, canvas.height);
  for (let y = 0; y < canvas.height; y++) {
    // Top row: the highest value, the colour map's last entry.
    const rgba = map.getColor(Math.round(((canvas.height - 1 - y) / (canvas.height - 1)) * (n - 1)));
    img.data.set(rgba, 4 * y);
  }
  ctx.putImageData(img, 0, 0);
  canvas.dataset.colormap = colormap;
}

const tick = (v: number, signed: boolean) => {
  const t = String(Number(v.toPrecision(3)));
  return signed && v > 0 ? `+${t}` : t;
};

/** Shows the bar for `scale` at this window (or hides it when the viewport has no colour map). */
export function drawColourBar(
  bar: HTMLElement,
  scale: ColourScale | undefined,
  voi: cornerstone.Voi,
  units: string,
): void {
  bar.hidden = !scale;
  if (!scale) return;
  paint(bar.querySelector("canvas")!, scale.colormap);
  const { windowCenter: c, windowWidth: w } = voi;
  const ticks = bar.querySelectorAll<HTMLElement>(".tick");
  [c + w / 2, c, c - w / 2].forEach((v, i) => (ticks[i].textContent = tick(v, scale.signed)));
  bar.querySelector(".caption")!.textContent = units ? `${scale.caption} (${units})` : scale.caption;
}
