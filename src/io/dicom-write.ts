/**
 * Derived DICOM series out (dcmjs): one instance per slice, a new SeriesInstanceUID and new
 * SOPInstanceUIDs, ImageType DERIVED\SECONDARY, a SeriesDescription and DerivationDescription
 * naming the method and its settings, ImageComments "NOT FOR CLINICAL USE", int16 pixels with
 * RescaleSlope/Intercept chosen to keep the float range.
 * - From a DICOM source: patient and study attributes kept (or anonymised), the same
 *   FrameOfReferenceUID, ImageOrientation/PositionPatient and PixelSpacing per slice, and a
 *   SourceImageSequence naming each source instance, so the series overlays its source. CT sources
 *   give CT Image Storage instances (PS3.3 A.3); other modalities Secondary Capture.
 * - Without a source (NIfTI, phantoms): a Secondary Capture series (PS3.3 A.8.1) in a new study,
 *   with generated UIDs.
 * Every series carries its geometry (ImageOrientation/PositionPatient, PixelSpacing,
 * SliceThickness, a FrameOfReferenceUID): the source's where it has it, else the volume's affine,
 * so that reading the series back puts every voxel where it was.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import dcmjs from "dcmjs";
import { valueRange } from "../image/stats.js";
import { affineOf, type Volume } from "../image/volume.js";
import { writeFileAtomic } from "./atomic.js";

const { DicomDict, DicomMetaDictionary } = dcmjs.data;
const CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2";
const SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7";
const EXPLICIT_LE = "1.2.840.10008.1.2.1";

export interface DerivedSeriesOptions {
  /** SeriesDescription, e.g. "scorerecon tv". */
  description: string;
  /** DerivationDescription: method, operator and settings. */
  derivation: string;
  seriesNumber?: number;
  /** Drop patient identity (PatientName/ID/BirthDate/Sex) and accession number. */
  anonymise?: boolean;
}

const ds = (x: number) => String(+x.toPrecision(10));

/**
 * The image plane (PS3.3 C.7.6.2, patient LPS) of each slice from a NIfTI-style affine (RAS+):
 * IOP's row direction is the column index's axis, its column direction the row index's; PixelSpacing
 * is [between rows, between columns].
 */
function planeFromAffine(v: Volume) {
  const a = affineOf(v);
  const lps = (x: number, y: number, z: number) => [-x, -y, z];
  const [ci, cj, ck] = [0, 1, 2].map((c) => lps(a[c], a[4 + c], a[8 + c]));
  const origin = lps(a[3], a[7], a[11]);
  const length = (x: number[]) => Math.hypot(...x);
  return {
    orientation: [...ci.map((x) => x / length(ci)), ...cj.map((x) => x / length(cj))],
    pixelSpacing: [length(cj), length(ci)],
    thickness: length(ck),
    position: (k: number) => origin.map((x, i) => x + k * ck[i]),
  };
}
const dicomDate = (d: Date) => d.toISOString().slice(0, 10).replace(/-/g, "");
const dicomTime = (d: Date) => d.toISOString().slice(11, 19).replace(/:/g, "");

/** Writes the series into `dir` (one .dcm per slice) and returns the file paths. */
export async function writeDicomSeries(dir: string, v: Volume, o: DerivedSeriesOptions): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const src = v.dicom;
  const now = new Date();
  const ct = src?.modality === "CT" && src.slices.every((s) => s.sopClassUid === CT_IMAGE);
  const sopClass = ct ? CT_IMAGE : SECONDARY_CAPTURE;
  const seriesUid = DicomMetaDictionary.uid();
  const study: Record<string, string> = {
    StudyInstanceUID: DicomMetaDictionary.uid(),
    StudyDate: dicomDate(now),
    StudyTime: dicomTime(now),
    StudyID: "",
    AccessionNumber: "",
    ReferringPhysicianName: "",
    PatientName: "",
    PatientID: "SCORERECON",
    PatientBirthDate: "",
    PatientSex: "",
    ...Object.fromEntries(Object.entries(src?.patientStudy ?? {}).filter(([, x]) => x !== "")),
  };
  if (o.anonymise)
    Object.assign(study, {
      PatientName: "",
      PatientID: "ANONYMOUS",
      PatientBirthDate: "",
      PatientSex: "",
      AccessionNumber: "",
    });
  // int16 with a rescale that spans the data: value = stored * slope + intercept.
  const { min: lo, max: hi } = valueRange(v.data);
  const slope = hi > lo ? (hi - lo) / 65000 : 1;
  const intercept = (hi + lo) / 2;
  const n = v.rows * v.cols;
  const plane = planeFromAffine(v);
  const frameOfReference = src?.frameOfReferenceUid ?? DicomMetaDictionary.uid();
  const files: string[] = [];
  for (let k = 0; k < v.slices; k++) {
    const sop = DicomMetaDictionary.uid();
    const px = new Int16Array(n);
    for (let i = 0; i < n; i++)
      px[i] = Math.max(-32768, Math.min(32767, Math.round((v.data[k * n + i] - intercept) / slope)));
    const source = src?.slices[k];
    const dataset: Record<string, unknown> = {
      SOPClassUID: sopClass,
      SOPInstanceUID: sop,
      ...study,
      ContentDate: dicomDate(now),
      ContentTime: dicomTime(now),
      Modality: src?.modality ?? (v.modality === "OT" ? "OT" : v.modality),
      SeriesInstanceUID: seriesUid,
      SeriesNumber: String(o.seriesNumber ?? 900),
      SeriesDescription: o.description.slice(0, 64),
      InstanceNumber: String(k + 1),
      Manufacturer: "",
      // CT Image IOD: value 3 is AXIAL or LOCALIZER (PS3.3 C.8.2.1.1.1).
      ImageType: ct ? ["DERIVED", "SECONDARY", "AXIAL"] : ["DERIVED", "SECONDARY"],
      DerivationDescription: o.derivation.slice(0, 1024),
      ImageComments: "NOT FOR CLINICAL USE",
      SamplesPerPixel: 1,
      PhotometricInterpretation: "MONOCHROME2",
      Rows: v.rows,
      Columns: v.cols,
      BitsAllocated: 16,
      BitsStored: 16,
      HighBit: 15,
      PixelRepresentation: 1,
      RescaleIntercept: ds(intercept),
      RescaleSlope: ds(slope),
      PixelSpacing: [ds(v.spacing[0]), ds(v.spacing[1])],
      PixelData: px.buffer,
      _vrMap: { PixelData: "OW" },
    };
    if (ct)
      Object.assign(dataset, {
        KVP: "",
        AcquisitionNumber: "",
        RescaleType: "HU",
        PositionReferenceIndicator: "",
        PatientPosition: src?.patientPosition ?? "",
      });
    else Object.assign(dataset, { ConversionType: "WSD", RescaleType: v.units === "HU" ? "HU" : "US" });
    // Laterality is type 2C in General Series: present and empty (unknown) for a derived image.
    dataset.Laterality = "";
    if (src && source)
      dataset.SourceImageSequence = [
        { ReferencedSOPClassUID: source.sopClassUid, ReferencedSOPInstanceUID: source.sopInstanceUid },
      ];
    const fromSource = src?.orientation && source?.position;
    Object.assign(dataset, {
      FrameOfReferenceUID: frameOfReference,
      ImageOrientationPatient: (fromSource ? src.orientation! : plane.orientation).map(ds),
      ImagePositionPatient: (fromSource ? source.position! : plane.position(k)).map(ds),
      SliceThickness: ds(fromSource ? v.spacing[2] : plane.thickness),
      ...(fromSource ? {} : { PixelSpacing: plane.pixelSpacing.map(ds) }),
    });
    // Secondary Capture has no Image Plane module: PatientOrientation (type 2C) is then required.
    if (!ct) dataset.PatientOrientation = "";
    const meta = {
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: sopClass,
      MediaStorageSOPInstanceUID: sop,
      TransferSyntaxUID: EXPLICIT_LE,
      ImplementationClassUID: "1.2.826.0.1.3680043.9.7777.100",
      ImplementationVersionName: "scorerecon",
    };
    const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
    dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
    const file = join(dir, `${String(k + 1).padStart(4, "0")}.dcm`);
    await writeFileAtomic(file, new Uint8Array(dict.write()));
    files.push(file);
  }
  return files;
}
