using BenchmarkDotNet.Running;
using BenchmarkDotNet.Validators;

namespace MirrorEmu.Bench;

/// <summary>Fails the run when a benchmark has no category from <see cref="BenchCategories"/> (after dotnet/performance's MandatoryCategoryValidator).</summary>
public sealed class MandatoryCategoryValidator : IValidator
{
    public bool TreatsWarningsAsErrors => true;

    public IEnumerable<ValidationError> Validate(ValidationParameters validationParameters)
    {
        foreach (BenchmarkCase benchmark in validationParameters.Benchmarks)
        {
            if (!benchmark.Descriptor.Categories.Any(c => BenchCategories.All.Contains(c)))
            {
                yield return new ValidationError(true, $"{benchmark.Descriptor.DisplayInfo} has no category from BenchCategories ({string.Join(", ", BenchCategories.All)})", benchmark);
            }
        }
    }
}
