/** Studies: upload, list, one, delete, and the slices of their series. */
import { z } from "zod";
import { sliceOf } from "../../src/image/volume.js";
import { notFound } from "../http/errors.js";
import { sendSlice, SliceQuery, sliceIndex } from "../http/slices.js";
import { page, PageQuery, parseQuery } from "../paging.js";
import { SlicePixelsSchema } from "../pixels.js";
import { UUID, type Storage } from "../storage.js";
import type { StudyRecord } from "../study-record.js";
import { discardUpload, ingestUpload, receivedUpload, uploadMiddleware } from "../uploads.js";
import { StudyPage, StudyView, type StudyJson } from "../views.js";
import { route, type ApiContext } from "./route.js";

/** The multipart form of an upload. */
const UploadForm = z.object({
  files: z.array(z.file()).meta({ description: "DICOM files, .zip files of them, or one NIfTI" }),
  modality: z.enum(["MR", "CT"]).optional().meta({ description: "for NIfTI, which records none" }),
});

export function findStudy(storage: Storage, id: string): StudyRecord {
  const s = UUID.test(id) ? storage.study(id) : undefined;
  if (!s) throw notFound("study", id);
  return s;
}

export function studyRoutes({ storage, jobs, limits, encoded }: ApiContext) {
  return [
    route({
      method: "post",
      path: "/api/studies",
      summary: "Upload a study: DICOM files (or a .zip of them) or one NIfTI",
      body: { schema: UploadForm, type: "multipart/form-data" },
      before: [uploadMiddleware(storage, limits)],
      ok: { 201: StudyView },
      errors: [400, 413],
      handle: async (req, res) => {
        const upload = receivedUpload(req);
        const { modality } = discardUpload(upload, () =>
          parseQuery(UploadForm.pick({ modality: true }), req.body ?? {}),
        );
        res.status(201).json((await ingestUpload(storage, upload, limits, modality)) satisfies StudyJson);
      },
    }),
    route({
      method: "get",
      path: "/api/studies",
      summary:
        "List studies, a page at a time: the newest `limit` after skipping the `offset` newest, oldest first",
      query: PageQuery,
      ok: { 200: StudyPage },
      errors: [400],
      handle: (_req, res, query) => {
        const { items, ...rest } = page(storage.studies(), query);
        res.json({ studies: items, ...rest } satisfies z.input<typeof StudyPage>);
      },
    }),
    route({
      method: "get",
      path: "/api/studies/:id",
      summary: "One study and its series",
      ok: { 200: StudyView },
      errors: [404],
      handle: (req, res) => void res.json(findStudy(storage, String(req.params.id)) satisfies StudyJson),
    }),
    route({
      method: "delete",
      path: "/api/studies/:id",
      summary:
        "Delete a study: its queued and running jobs are cancelled first (error study_deleted), and the results of all its jobs are removed",
      ok: { 204: { description: "deleted" } },
      errors: [404],
      // Its jobs are stopped and their results removed first: nothing keeps running for a study that is gone.
      handle: async (req, res) => {
        const id = String(req.params.id);
        findStudy(storage, id);
        await jobs.removeStudyJobs(id);
        storage.deleteStudy(id);
        res.status(204).end();
      },
    }),
    route({
      method: "get",
      path: "/api/studies/:id/series/:sid/slices/:n",
      summary: "One slice's pixels",
      query: SliceQuery,
      ok: { 200: SlicePixelsSchema },
      errors: [400, 404],
      handle: (req, res, { format }) => {
        const study = findStudy(storage, String(req.params.id));
        const info = study.series.find((s) => s.id === req.params.sid);
        const v = info && storage.volume(study.id, info.id);
        if (!info || !v) throw notFound("series", String(req.params.sid));
        const n = sliceIndex(String(req.params.n), v.slices);
        sendSlice(req, res, encoded, format, () => [sliceOf(v, n).data, v, info.window], { immutable: true });
      },
    }),
  ];
}
