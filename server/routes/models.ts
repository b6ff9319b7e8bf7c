/** The priors a job can name (GET /api/models). */
import { z } from "zod";
import { named } from "../api-schemas.js";
import { listModels } from "../models.js";
import { route, type ApiContext } from "./route.js";

const ModelList = named(
  "ModelList",
  z.object({
    models: z.array(
      z.object({
        name: z.string().meta({ description: "what a job's `model` names" }),
        shipped: z.boolean(),
        prior: z.unknown().meta({ description: "its prior.json: modality, image size, training, ..." }),
      }),
    ),
  }),
);

export function modelRoutes({ storage }: ApiContext) {
  return [
    route({
      method: "get",
      path: "/api/models",
      summary: "Shipped and user-trained priors with their prior.json",
      ok: { 200: ModelList },
      handle: (_req, res) =>
        void res.json({ models: listModels(storage.root) } satisfies z.input<typeof ModelList>),
    }),
  ];
}
