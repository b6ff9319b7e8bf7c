/** The parts of the legacy Cornerstone 2.x / cornerstone-tools 6.x APIs the viewer uses. */
declare module "cornerstone-core" {
  export interface Voi {
    windowWidth: number;
    windowCenter: number;
  }
  export interface Viewport {
    scale: number;
    translation: { x: number; y: number };
    voi: Voi;
    invert: boolean;
    colormap?: unknown;
  }
  export interface Image {
    imageId: string;
    minPixelValue: number;
    maxPixelValue: number;
    slope: number;
    intercept: number;
    windowCenter: number;
    windowWidth: number;
    rows: number;
    columns: number;
    height: number;
    width: number;
    color: boolean;
    columnPixelSpacing: number;
    rowPixelSpacing: number;
    sizeInBytes: number;
    getPixelData(): Int16Array;
  }
  export const EVENTS: { IMAGE_RENDERED: string; NEW_IMAGE: string };
  export function enable(element: HTMLElement): void;
  export function disable(element: HTMLElement): void;
  export function displayImage(element: HTMLElement, image: Image, viewport?: Partial<Viewport>): void;
  export function loadImage(imageId: string): Promise<Image>;
  export function loadAndCacheImage(imageId: string): Promise<Image>;
  export function registerImageLoader(
    scheme: string,
    loader: (imageId: string) => { promise: Promise<Image>; cancelFn?: () => void },
  ): void;
  export function getDefaultViewportForImage(element: HTMLElement, image: Image): Viewport;
  export function getViewport(element: HTMLElement): Viewport | undefined;
  export function setViewport(element: HTMLElement, viewport: Viewport): void;
  export function getImage(element: HTMLElement): Image | undefined;
  export function resize(element: HTMLElement, fitToWindow?: boolean): void;
  export function reset(element: HTMLElement): void;
  export function getEnabledElement(element: HTMLElement): { canvas: HTMLCanvasElement; image?: Image };
  export interface Colormap {
    getNumberOfColors(): number;
    /** RGBA, 0..255. */
    getColor(index: number): number[];
  }
  export const colors: { getColormap(id: string): Colormap };
  export const imageCache: { purgeCache(): void };
}

declare module "cornerstone-tools" {
  export const external: { cornerstone: unknown; cornerstoneMath: unknown; Hammer: unknown };
  export function init(config?: object): void;
  export function addTool(tool: unknown, config?: object): void;
  export function addToolForElement(element: HTMLElement, tool: unknown, config?: object): void;
  export function setToolActive(name: string, options: { mouseButtonMask?: number }): void;
  export function addStackStateManager(element: HTMLElement, types: string[]): void;
  export function addToolState(element: HTMLElement, type: string, data: unknown): void;
  export function getToolState(
    element: HTMLElement,
    type: string,
  ): { data: { currentImageIdIndex: number; imageIds: string[] }[] } | undefined;
  export function clearToolState(element: HTMLElement, type: string): void;
  export class Synchronizer {
    constructor(event: string, handler: SyncHandler);
    add(element: HTMLElement): void;
    remove(element: HTMLElement): void;
    destroy(): void;
    setViewport(element: HTMLElement, viewport: unknown): void;
  }
  export type SyncHandler = (
    synchronizer: Synchronizer,
    source: HTMLElement,
    target: HTMLElement,
    event?: unknown,
  ) => void;
  export const wwwcSynchronizer: SyncHandler;
  export const panZoomSynchronizer: SyncHandler;
  export const stackImageIndexSynchronizer: SyncHandler;
  export const WwwcTool: unknown;
  export const PanTool: unknown;
  export const ZoomTool: unknown;
  export const ZoomMouseWheelTool: unknown;
  export const StackScrollMouseWheelTool: unknown;
}

declare module "cornerstone-math";
declare module "hammerjs";
