/** A study as the server keeps it (studies/<study>/study.json): its series, no patient attributes. */
import type { Volume } from "../src/image/volume.js";

export interface SeriesInfo {
  id: string;
  description: string;
  modality: Volume["modality"];
  units: Volume["units"];
  rows: number;
  cols: number;
  slices: number;
  spacing: readonly number[];
  /** Default display window (centre, width) in the series' units. */
  window: { center: number; width: number };
}

export interface StudyRecord {
  id: string;
  created: string;
  /** What was uploaded: "dicom", "nifti" or "demo". No patient attributes are kept here. */
  source: string;
  files: number;
  series: SeriesInfo[];
}
