declare module "dcmjs" {
  /** The parts of dcmjs scorerecon uses (dcmjs ships no types). */
  const dcmjs: {
    data: {
      DicomDict: new (meta: Record<string, unknown>) => {
        dict: Record<string, unknown>;
        write(): ArrayBuffer;
      };
      DicomMetaDictionary: {
        uid(): string;
        denaturalizeDataset(ds: Record<string, unknown>): Record<string, unknown>;
      };
    };
  };
  export default dcmjs;
}
